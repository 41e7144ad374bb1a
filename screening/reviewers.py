"""Who screens, how, and with which exclusion reasons: the per-project screening setup.

Reviewers are named once per project; decisions point at them. Each stage has a
mode: ``single`` (one decision is final) or ``dual`` (two independent decisions
must agree, disagreements go to a third reviewer), optionally ``blind`` (a
reviewer cannot see the other's decision until both are in). Full-text
exclusions take exactly one reason from the list configured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import access
from .errors import ConfigError, DecisionError
from .schema import STAGES, ExclusionReason, Reviewer, Setting, Stage
from .store import Store, audit, serialize, set_setting

MODE_SETTING = "screening_mode"
MODES = ("single", "dual")
ROLES = access.ROLES
_UNCHANGED: Any = object()


@dataclass(frozen=True)
class ScreeningMode:
    """How one stage is screened."""

    stage: str
    mode: str = "single"
    blind: bool = False

    @property
    def dual(self) -> bool:
        return self.mode == "dual"


@dataclass(frozen=True)
class ReviewerInfo:
    id: int
    name: str
    role: str
    email: str | None = None
    subject: str | None = None
    active: bool = True


REVIEWER_COLUMNS = (Reviewer.id, Reviewer.name, Reviewer.role, Reviewer.email, Reviewer.subject, Reviewer.active)


def _info(row: Reviewer) -> ReviewerInfo:
    return ReviewerInfo(row.id, row.name, row.role, row.email, row.subject, bool(row.active))


def check_stage(stage: str) -> Stage:
    """The stage, or a ConfigError naming the allowed ones."""
    if stage not in STAGES:
        raise ConfigError(f"--stage: {stage!r} is not one of {', '.join(STAGES)}")
    return Stage(stage)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    return role


def _check_email(email: str | None) -> str | None:
    value = access.normalize_email(email)
    if value is not None and (value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value):
        raise ConfigError(f"--email: {email!r} is not an email address")
    return value


def _identity_taken(session: Session, email: str | None, subject: str | None, but: int | None = None) -> None:
    """A ConfigError naming the reviewer who signs in with ``email`` or ``subject`` already."""
    for column, value, option in ((Reviewer.email, email, "--email"), (Reviewer.subject, subject, "--subject")):
        if value is None:
            continue
        other = session.scalar(select(Reviewer.name).where(column == value, Reviewer.id != (but or -1)))
        if other is not None:
            raise ConfigError(f"{option}: {value!r} is already the sign-in of reviewer {other!r}")


# -- reviewers ---------------------------------------------------------------
def add_reviewer(
    store: Store,
    name: str,
    *,
    role: str = "reviewer",
    email: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
) -> ReviewerInfo:
    """Register a named reviewer; decisions can only be made by registered reviewers.

    ``email`` (matched case-insensitively against the identity provider's verified email) or
    ``subject`` (its ``sub`` claim) is how the reviewer signs in to a team server.
    """
    name = (name or "").strip()
    if not name:
        raise ConfigError("reviewer name: must not be empty")
    _check_role(role)
    email = _check_email(email)
    subject = (subject or "").strip() or None
    with store.begin() as s:
        access.require_owner(s, "change the reviewer list")
        if s.scalar(select(Reviewer.id).where(Reviewer.name == name)) is not None:
            raise ConfigError(f"reviewer {name!r} already exists in this project")
        _identity_taken(s, email, subject)
        reviewer = Reviewer(name=name, role=role, email=email, subject=subject, active=True)
        s.add(reviewer)
        try:
            s.flush()
        except IntegrityError as e:  # added by another process a moment ago (names and sign-ins are unique)
            raise ConfigError(f"reviewer {name!r} (or that sign-in) already exists in this project") from e
        audit(s, "reviewer_add", {"name": name, "role": role, "email": email, "subject": subject}, actor=actor)
        return _info(reviewer)


def update_reviewer(
    store: Store,
    name: str,
    *,
    role: str | None = None,
    email: str | None = _UNCHANGED,
    subject: str | None = _UNCHANGED,
    active: bool | None = None,
    actor: str | None = None,
) -> ReviewerInfo:
    """Change a reviewer's role, sign-in email or subject, or remove (``active=False``) or restore their access.

    Nothing is deleted: a reviewer whose access is removed keeps every decision they made,
    and can no longer sign in or decide. ``email=None`` clears the email (likewise ``subject``).
    The last active owner cannot be demoted or removed while the project has owners.
    """
    with store.begin() as s:
        access.require_owner(s, "change the reviewer list")
        row = s.scalars(select(Reviewer).where(Reviewer.name == (name or "").strip())).first()
        if row is None:
            listed = ", ".join(s.scalars(select(Reviewer.name).where(Reviewer.role != "system"))) or "none yet"
            raise ConfigError(f"no reviewer named {name!r} in this project (registered: {listed})")
        if row.role == "system":
            raise ConfigError(f"reviewer {row.name!r} is the system reviewer of imported labels; it has no sign-in")
        before = _info(row)
        changes: dict[str, Any] = {}
        if role is not None and _check_role(role) != row.role:
            if role == "system":
                raise ConfigError("--role: 'system' is the imported labels' reviewer, not a person's role")
            changes["role"] = role
        if email is not _UNCHANGED and _check_email(email) != row.email:
            changes["email"] = _check_email(email)
        if subject is not _UNCHANGED and ((subject or "").strip() or None) != row.subject:
            changes["subject"] = (subject or "").strip() or None
        if active is not None and bool(active) != bool(row.active):
            changes["active"] = bool(active)
        if not changes:
            return before
        _identity_taken(s, changes.get("email"), changes.get("subject"), but=row.id)
        leaves_owners = row.role == "owner" and (
            changes.get("role", "owner") != "owner" or changes.get("active") is False
        )
        if leaves_owners:
            others = s.scalar(
                select(func.count(Reviewer.id)).where(
                    Reviewer.role == "owner", Reviewer.active.is_(True), Reviewer.id != row.id
                )
            )
            if not others:
                raise ConfigError(f"{row.name!r} is the project's last owner: make another reviewer owner first")
        for key, value in changes.items():
            setattr(row, key, value)
        s.flush()
        audit(s, "reviewer_update", {"name": row.name, **changes}, actor=actor)
        return _info(row)


def list_reviewers(store: Store) -> list[ReviewerInfo]:
    with store.read() as s:
        return [ReviewerInfo(*row) for row in s.execute(select(*REVIEWER_COLUMNS).order_by(Reviewer.id))]


def reviewer_by_name(session: Session, name: str, doing: str = "act") -> ReviewerInfo:
    """The registered reviewer called ``name``; the error lists who is registered.

    A signed-in identity (``screening.access``) may name only itself; a reviewer whose access
    was removed is refused too.
    """
    access.check_self(session, name or "", doing)
    row = session.execute(select(*REVIEWER_COLUMNS).where(Reviewer.name == (name or "").strip())).first()
    if row is None:
        known = list(
            session.scalars(
                select(Reviewer.name).where(Reviewer.role != "system", Reviewer.active.is_(True)).order_by(Reviewer.id)
            )
        )
        listed = ", ".join(known) if known else "none yet"
        raise DecisionError(
            f"--reviewer: no reviewer named {name!r} in this project (registered: {listed}); "
            f"add one with 'screening reviewers add NAME'"
        )
    info = ReviewerInfo(*row)
    if not info.active:
        raise DecisionError(
            f"--reviewer: {info.name!r} no longer has access to this project (their decisions are kept); "
            f"restore it with 'screening reviewers update {info.name} --restore'"
        )
    return info


def reviewer_names(session: Session) -> dict[int, str]:
    return {rid: name for rid, name in session.execute(select(Reviewer.id, Reviewer.name))}


# -- exclusion reasons --------------------------------------------------------
def add_reason(store: Store, text: str, *, stage: str = Stage.FULL_TEXT, actor: str | None = None) -> int:
    """Add an exclusion reason to a stage's list; returns its position in the list."""
    check_stage(stage)
    text = " ".join((text or "").split())
    if not text:
        raise ConfigError("reason: must not be empty")
    with store.begin() as s:
        access.require_owner(s, "change the exclusion reasons")
        serialize(s, f"exclusion reasons {stage}")  # the position below is read, then written
        if match_reason(s, stage, text, strict=False) is not None:
            raise ConfigError(f"reason {text!r} is already in the {stage} list")
        position = (s.scalar(select(func.max(ExclusionReason.position)).where(ExclusionReason.stage == stage)) or 0) + 1
        s.add(ExclusionReason(stage=stage, text=text, position=position))
        audit(s, "reason_add", {"stage": stage, "text": text}, actor=actor)
        return position


def list_reasons(store_or_session: Store | Session, stage: str = Stage.FULL_TEXT) -> list[str]:
    """The stage's exclusion reasons, in the order they were added."""
    check_stage(stage)
    query = select(ExclusionReason.text).where(ExclusionReason.stage == stage).order_by(ExclusionReason.position)
    if isinstance(store_or_session, Session):
        return list(store_or_session.scalars(query))
    with store_or_session.read() as s:
        return list(s.scalars(query))


def match_reason(session: Session, stage: str, reason: str, *, strict: bool = True) -> str | None:
    """The configured reason ``reason`` names (case and spacing ignored).

    With ``strict``, an unknown reason is a DecisionError listing the allowed ones.
    """
    wanted = " ".join(reason.split()).casefold()
    allowed = list_reasons(session, stage)
    for text in allowed:
        if text.casefold() == wanted:
            return text
    if not strict:
        return None
    if not allowed:
        raise DecisionError(
            f"--reason: {reason!r} is not a {stage} exclusion reason: none are configured yet; "
            f"add them with 'screening reasons add TEXT --stage {stage}'"
        )
    raise DecisionError(
        f"--reason: {reason!r} is not a {stage} exclusion reason; allowed: " + "; ".join(repr(t) for t in allowed)
    )


# -- modes --------------------------------------------------------------------
def _mode_from(value: Any, stage: str) -> ScreeningMode:
    entry = (value or {}).get(stage) or {}
    return ScreeningMode(stage=stage, mode=entry.get("mode", "single"), blind=bool(entry.get("blind", False)))


def get_mode(store_or_session: Store | Session, stage: str = Stage.TITLE_ABSTRACT) -> ScreeningMode:
    """The screening mode of ``stage`` (single, not blind, unless set)."""
    check_stage(stage)
    if isinstance(store_or_session, Session):
        row = store_or_session.get(Setting, MODE_SETTING)
        return _mode_from(None if row is None else row.value, stage)
    return _mode_from(store_or_session.get_setting(MODE_SETTING), stage)


def set_mode(store: Store, stage: str, mode: str, *, blind: bool = False, actor: str | None = None) -> ScreeningMode:
    """Set single or dual screening (optionally blind) for one stage."""
    check_stage(stage)
    if mode not in MODES:
        raise ConfigError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    if blind and mode != "dual":
        raise ConfigError("--blind: blind mode needs dual screening (mode 'dual')")
    with store.begin() as s:
        access.require_owner(s, "change the screening mode")
        serialize(s, MODE_SETTING)  # read, changed, written back: one process at a time
        row = s.get(Setting, MODE_SETTING)
        value = dict(row.value) if row is not None and row.value else {}
        value[stage] = {"mode": mode, "blind": blind}
        set_setting(s, MODE_SETTING, value, actor=actor)
    return ScreeningMode(stage=stage, mode=mode, blind=blind)
