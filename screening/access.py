"""Who may do what in a project: the roles, the signed-in identity, and the checks the library makes.

Roles (``reviewers.role``)::

    owner        the settings, imports, searches, modes, stopping rule and reviewer list;
                 screens and resolves conflicts too
    adjudicator  screens, and resolves conflicts (as a third reviewer)
    reviewer     screens, as themselves
    system       the imported labels; never signs in

A :class:`~screening.store.Store` with no identity is the local administrator: the CLI, and
the dashboard without sign-in configured. Every check passes for it, as before.

The dashboard, when sign-in is configured, maps the identity provider's verified email (or
subject) to a reviewer with :func:`sign_in`, and opens the project through
``store.acting_as(identity)``. Every library call through that store is then checked here:

* only an owner writes a setting (:func:`require_owner`, called by ``store.set_setting`` and
  the reviewer, reason, import and deduplication functions);
* a signed-in identity acts and reads only as itself: every function that takes
  ``reviewer=`` resolves it through :func:`screening.reviewers.reviewer_by_name`, which
  calls :func:`check_self`, so no decision, lease, undo or blind read can name someone else;
* the identity's role and access are read again from ``reviewers`` on each check, so a
  reviewer whose access was removed is refused at their next action.

A refusal is an :class:`~screening.errors.AccessError`; the store writes it to the audit log
(``access_refused``) after rolling back the transaction it happened in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import AccessError
from .schema import Reviewer

if TYPE_CHECKING:
    from .store import Store

OWNER = "owner"
REVIEWER = "reviewer"
ADJUDICATOR = "adjudicator"
SYSTEM = "system"
ROLES = (OWNER, REVIEWER, ADJUDICATOR, SYSTEM)
PERSON_ROLES = (OWNER, REVIEWER, ADJUDICATOR)  # the roles a person signs in with
RESOLVERS = (OWNER, ADJUDICATOR)
IDENTITY_KEY = "screening_identity"  # where a session carries the store's identity (Session.info)


@dataclass(frozen=True)
class Identity:
    """A signed-in person, as the reviewer they map to (role as at sign-in; checks read it again)."""

    reviewer_id: int
    name: str
    role: str
    email: str | None = None
    subject: str | None = None


def normalize_email(email: str | None) -> str | None:
    """An email as stored and matched: trimmed and lower-case (None for empty)."""
    value = (email or "").strip().lower()
    return value or None


def identity_of(where: Store | Session) -> Identity | None:
    """The identity a store or one of its sessions acts for; None for the local administrator."""
    if isinstance(where, Session):
        return where.info.get(IDENTITY_KEY)
    return getattr(where, "identity", None)


def _current(session: Session, identity: Identity, doing: str) -> tuple[str, str]:
    """The identity's reviewer name and role now; refused when the reviewer is gone or removed."""
    row = session.execute(
        select(Reviewer.name, Reviewer.role, Reviewer.active).where(Reviewer.id == identity.reviewer_id)
    ).first()
    if row is None or not row.active:
        raise AccessError(f"{identity.name!r} no longer has access to this project; cannot {doing}", identity, doing)
    return row.name, row.role


def _check(where: Store | Session, roles: tuple[str, ...], doing: str, name: str | None = None) -> None:
    identity = identity_of(where)
    if identity is None:
        return
    if isinstance(where, Session):
        _check_in(where, identity, roles, doing, name)
    else:
        with where.read() as s:
            _check_in(s, identity, roles, doing, name)


def _check_in(session: Session, identity: Identity, roles: tuple[str, ...], doing: str, name: str | None) -> None:
    current, role = _current(session, identity, doing)
    if name is not None and name.strip() != current:
        raise AccessError(
            f"signed in as {current!r}: cannot {doing} as {name.strip()!r} (only as yourself)", identity, doing
        )
    if role not in roles:
        needed = " or ".join(roles) if len(roles) < len(PERSON_ROLES) else "a reviewer of the project"
        raise AccessError(f"{current!r} ({role}) cannot {doing}: that takes {needed}", identity, doing)


def require_owner(where: Store | Session, doing: str) -> None:
    """Refuse unless the local administrator or an owner acts."""
    _check(where, (OWNER,), doing)


def require_role(where: Store | Session, roles: tuple[str, ...], doing: str) -> None:
    """Refuse unless the local administrator or a signed-in identity with one of ``roles`` acts."""
    _check(where, roles, doing)


def check_self(session: Session, name: str, doing: str = "act") -> None:
    """A signed-in identity may name only itself as the reviewer (any person role); the administrator anyone."""
    _check(session, PERSON_ROLES, doing, name)


def is_owner(where: Store | Session) -> bool:
    """True for the local administrator and for a signed-in owner (read afresh)."""
    identity = identity_of(where)
    if identity is None:
        return True
    try:
        _check(where, (OWNER,), "check the role")
    except AccessError:
        return False
    return True


def sign_in(
    store: Store,
    *,
    email: str | None = None,
    email_verified: bool = False,
    subject: str | None = None,
    issuer: str | None = None,
) -> Identity:
    """The reviewer an identity provider's user maps to: by subject, else by verified email.

    An unverified email never matches (anyone could claim it). An identity on no reviewer
    of the project, or on one whose access was removed, is refused, and the refusal is logged.
    """
    email = normalize_email(email)
    subject = (subject or "").strip() or None
    shown = email or subject or "an identity without email or subject"
    with store.read() as s:
        row = None
        if subject is not None:
            row = s.scalars(select(Reviewer).where(Reviewer.subject == subject)).first()
        if row is None and email is not None and email_verified:
            row = s.scalars(select(Reviewer).where(func.lower(Reviewer.email) == email)).first()
        if row is None or row.role == SYSTEM or not row.active:
            why = "is not" if row is None or row.role == SYSTEM else "is no longer"
            unverified = "" if email is None or email_verified else " (its email is not verified by the provider)"
            raise AccessError(
                f"{shown}{unverified} {why} on this project's list of reviewers; ask the project's owner to add you",
                None,
                "sign in",
                claimed={"email": email, "email_verified": bool(email_verified), "subject": subject, "issuer": issuer},
            )
        return Identity(row.id, row.name, row.role, row.email, row.subject)


def refusal_detail(error: AccessError) -> dict[str, Any]:
    """What the audit log keeps of a refusal: who, doing what, and the message."""
    who = error.identity
    detail: dict[str, Any] = {"doing": error.doing, "message": str(error)}
    if who is not None:
        detail |= {"reviewer": who.name, "reviewer_id": who.reviewer_id}
    if error.claimed:
        detail |= {"claimed": error.claimed}
    return detail
