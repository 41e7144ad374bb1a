"""The project database schema (SQLAlchemy 2.0, typed).

One project is one database. The rules live in the schema as well as in Python:
check constraints on stages and decision values, unique keys on links, foreign keys
everywhere. Nothing here uses SQL that only SQLite understands, so the same schema
runs on PostgreSQL. Changes to this file need a new Alembic migration in
``screening/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Stage(StrEnum):
    """The two screening stages; their values are what the database and the CLI hold."""

    TITLE_ABSTRACT = "title_abstract"
    FULL_TEXT = "full_text"


STAGES = tuple(Stage)
DECISION_VALUES = ("include", "exclude", "maybe", "retrieved", "not_retrieved", "undo")
DECISION_KINDS = ("screen", "prior", "resolution", "automation")
SOURCE_KINDS = ("database", "register", "website", "organisation", "citation", "other")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timestamps are stored in UTC, timezone-aware."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[str]: JSON}


class Setting(Base):
    """Project settings: name, query, criteria, screening modes, keywords."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Record(Base):
    """One bibliographic record as imported; duplicates point at their canonical record."""

    __tablename__ = "records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pmid: Mapped[str | None] = mapped_column(String(20), index=True)
    doi: Mapped[str | None] = mapped_column(String(300), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    journal: Mapped[str] = mapped_column(Text, default="")
    year: Mapped[int | None] = mapped_column(Integer)
    volume: Mapped[str | None] = mapped_column(Text)
    issue: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[str | None] = mapped_column(Text)
    mesh_terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    publication_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    retracted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    deleted_from_source: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # deduplication: NULL for a record that stands for its group
    canonical_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="RESTRICT"), index=True)
    title_key: Mapped[str] = mapped_column(String(400), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint("canonical_id IS NULL OR canonical_id <> id", name="not_self_duplicate"),)


class Source(Base):
    """One search or import: where records came from (PRISMA and PRISMA-S)."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="database")
    method: Mapped[str] = mapped_column(String(20), default="import")  # import | search
    query: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(Text)
    file_format: Mapped[str | None] = mapped_column(String(20))
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default="complete")
    count_reported: Mapped[int | None] = mapped_column(Integer)
    count_retrieved: Mapped[int] = mapped_column(Integer, default=0)
    count_new: Mapped[int] = mapped_column(Integer, default=0)
    tool_version: Mapped[str | None] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # the imported file's content (decompressed), so importing it again is noticed
    content_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # when deduplication took this source's records in; None: it has not finished since the import
    deduped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),
        CheckConstraint("status IN ('running', 'complete', 'failed')", name="status"),
        CheckConstraint("count_retrieved >= 0", name="retrieved_nonneg"),
    )


class RecordSource(Base):
    """Which source delivered which record; kept through deduplication."""

    __tablename__ = "record_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    source_record_id: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("record_id", "source_id", name="uq_record_sources_pair"),)


class SourceBatch(Base):
    """Raw payload of one fetched batch (compressed), the audit trail of a search."""

    __tablename__ = "source_batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    retstart: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DuplicatePair(Base):
    """Evidence for a duplicate link: how it was found, how sure, and its status."""

    __tablename__ = "duplicate_pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    other_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(30))
    score: Mapped[float] = mapped_column(default=1.0)
    status: Mapped[str] = mapped_column(String(20), default="merged")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        UniqueConstraint("record_id", "other_id", name="uq_duplicate_pairs_pair"),
        CheckConstraint("status IN ('merged', 'uncertain', 'rejected')", name="status"),
        CheckConstraint("record_id <> other_id", name="distinct"),
    )


class Reviewer(Base):
    __tablename__ = "reviewers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="reviewer")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the sign-in identity (screening.access): a verified email, kept lower-case, or the provider's subject
    email: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())  # false: access removed
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'reviewer', 'adjudicator', 'system')", name="role"),
        Index("uq_reviewers_email", "email", unique=True),
        Index("uq_reviewers_subject", "subject", unique=True),
    )


class ExclusionReason(Base):
    __tablename__ = "exclusion_reasons"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        UniqueConstraint("stage", "text", name="uq_exclusion_reasons_stage_text"),
        CheckConstraint(_in("stage", STAGES), name="stage"),
    )


class Decision(Base):
    """One screening act. Rows are never updated or deleted: undo is a new row.

    ``revises_id``: on a decision, the decision it replaces (a revision: written with an
    undo of that decision in the same transaction; a resolution: the record's previous
    resolution). On an undo row, set when the undo was written by a revision, so that
    undoing the revision brings the revised decision back (as a copy of it).
    """

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="RESTRICT"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id", ondelete="RESTRICT"), index=True)
    stage: Mapped[str] = mapped_column(String(20), default=Stage.TITLE_ABSTRACT.value)
    value: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="screen")
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", ondelete="RESTRICT"))
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"))  # (ALTER TABLE on SQLite: no ON DELETE)
    # an automation exclude written by a stop of the stage (the stopping rule's decision)
    stop_id: Mapped[int | None] = mapped_column(ForeignKey("stops.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    __table_args__ = (
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint(_in("value", DECISION_VALUES), name="value"),
        CheckConstraint(_in("kind", DECISION_KINDS), name="kind"),
        CheckConstraint("(value = 'undo') = (undoes_id IS NOT NULL)", name="undo_target"),
        Index("ix_decisions_record_stage", "record_id", "stage"),
    )


# The rules that must hold whatever the application does, enforced by unique indexes:
# a decision is undone at most once, and a record's resolutions at a stage form one chain
# (each new one names the one before it), so two adjudicators cannot both resolve a record.
ONE_UNDO_INDEX = "uq_decisions_undoes_id"
ONE_RESOLUTION_INDEX = "uq_decisions_resolution_chain"
RESOLUTION_ROWS = "kind = 'resolution' AND value <> 'undo'"
Index(ONE_UNDO_INDEX, Decision.undoes_id, unique=True)
Index(
    ONE_RESOLUTION_INDEX,
    Decision.record_id,
    Decision.stage,
    func.coalesce(Decision.revises_id, 0),
    unique=True,
    sqlite_where=text(RESOLUTION_ROWS),
    postgresql_where=text(RESOLUTION_ROWS),
)


class Stop(Base):
    """A stage ended early: who stopped it, by which rule, with its numbers (append-only).

    The records it left unscreened each get an automation exclude (``Decision.stop_id``).
    Undoing a stop is a new row naming it in ``undoes_id``, with undo rows for those excludes.
    """

    __tablename__ = "stops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(20))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="RESTRICT"))
    rule: Mapped[str] = mapped_column(String(50))
    target: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the rule's verdict when it was asked
    records: Mapped[int] = mapped_column(Integer, default=0)  # automation excludes written (or undone)
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("stops.id", ondelete="RESTRICT"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        CheckConstraint(_in("stage", STAGES), name="stage"),
        CheckConstraint("records >= 0", name="records_nonneg"),
    )


class Lease(Base):
    """A record on a reviewer's screen: others are shown other records until the lease expires.

    Not part of the audit trail: leases only steer who is shown what; the decision write
    checks the record's state itself.
    """

    __tablename__ = "leases"
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (CheckConstraint(_in("stage", STAGES), name="stage"),)


class AuditEvent(Base):
    """Append-only log of everything that changed the project."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CacheEntry(Base):
    """Derived data (feature matrices, fitted models) keyed by a fingerprint of its inputs."""

    __tablename__ = "cache"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(100))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


APPEND_ONLY_TABLES = ("decisions", "audit_log", "stops")
