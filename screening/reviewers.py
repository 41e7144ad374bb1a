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

from .errors import ConfigError, DecisionError
from .schema import STAGES, ExclusionReason, Reviewer, Setting, Stage
from .store import Store, audit, serialize, set_setting

MODE_SETTING = "screening_mode"
MODES = ("single", "dual")
ROLES = ("reviewer", "adjudicator", "system")


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


def check_stage(stage: str) -> Stage:
    """The stage, or a ConfigError naming the allowed ones."""
    if stage not in STAGES:
        raise ConfigError(f"--stage: {stage!r} is not one of {', '.join(STAGES)}")
    return Stage(stage)


# -- reviewers ---------------------------------------------------------------
def add_reviewer(store: Store, name: str, *, role: str = "reviewer", actor: str | None = None) -> ReviewerInfo:
    """Register a named reviewer; decisions can only be made by registered reviewers."""
    name = (name or "").strip()
    if not name:
        raise ConfigError("reviewer name: must not be empty")
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    with store.begin() as s:
        if s.scalar(select(Reviewer.id).where(Reviewer.name == name)) is not None:
            raise ConfigError(f"reviewer {name!r} already exists in this project")
        reviewer = Reviewer(name=name, role=role)
        s.add(reviewer)
        try:
            s.flush()
        except IntegrityError as e:  # added by another process a moment ago (names are unique)
            raise ConfigError(f"reviewer {name!r} already exists in this project") from e
        audit(s, "reviewer_add", {"name": name, "role": role}, actor=actor)
        return ReviewerInfo(reviewer.id, reviewer.name, reviewer.role)


def list_reviewers(store: Store) -> list[ReviewerInfo]:
    with store.read() as s:
        rows = s.execute(select(Reviewer.id, Reviewer.name, Reviewer.role).order_by(Reviewer.id))
        return [ReviewerInfo(*row) for row in rows]


def reviewer_by_name(session: Session, name: str) -> ReviewerInfo:
    """The registered reviewer called ``name``; the error lists who is registered."""
    row = session.execute(
        select(Reviewer.id, Reviewer.name, Reviewer.role).where(Reviewer.name == (name or "").strip())
    ).first()
    if row is None:
        known = list(session.scalars(select(Reviewer.name).where(Reviewer.role != "system").order_by(Reviewer.id)))
        listed = ", ".join(known) if known else "none yet"
        raise DecisionError(
            f"--reviewer: no reviewer named {name!r} in this project (registered: {listed}); "
            f"add one with 'screening reviewers add NAME'"
        )
    return ReviewerInfo(*row)


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
        serialize(s, MODE_SETTING)  # read, changed, written back: one process at a time
        row = s.get(Setting, MODE_SETTING)
        value = dict(row.value) if row is not None and row.value else {}
        value[stage] = {"mode": mode, "blind": blind}
        set_setting(s, MODE_SETTING, value, actor=actor)
    return ScreeningMode(stage=stage, mode=mode, blind=blind)
