"""Open, create and query a review project.

A project is one database: a SQLite file by default (WAL journal, foreign keys on)
or any SQLAlchemy URL, such as ``postgresql+psycopg2://...``. Every write happens
inside ``Store.begin()``, one transaction, so a failed import or a killed process
leaves the project as it was before.

Transactions isolate what they read as well as what they write, so a check and the
write that depends on it cannot be split by another process:

* on SQLite a write transaction starts with ``BEGIN IMMEDIATE`` (it holds the write lock
  from its first statement, so writers run one after the other), and a read transaction
  with ``BEGIN``, which in WAL mode reads one snapshot however long it runs;
* on PostgreSQL reads run at ``REPEATABLE READ`` (one snapshot), and writes lock the rows
  their checks depend on (``SELECT ... FOR UPDATE``, see :func:`lock_rows`) under
  unique indexes that hold the rules whatever the application does.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import __version__
from .access import IDENTITY_KEY, Identity, refusal_detail, require_owner
from .errors import AccessError, ConfigError, MissingDependency, RecordNotFound, SchemaError, StoreError
from .schema import AuditEvent, Record, Setting, Source

DB_ENV = "SCREENING_DB"
SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_CACHE_KIB = 65536  # index pages stay in memory while a large import grows the indexes


def resolve_url(db: str | os.PathLike[str] | None) -> str:
    """Turn ``--db`` (a path or a URL) or ``$SCREENING_DB`` into a SQLAlchemy URL."""
    value = os.fspath(db) if db is not None else os.environ.get(DB_ENV)
    if not value:
        raise ConfigError(f"no project database given: pass --db PATH_OR_URL or set {DB_ENV}")
    if "://" in value:
        try:
            make_url(value)
        except ArgumentError as e:
            raise ConfigError(f"--db: {value!r} is not a valid database URL") from e
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own implicit transactions start only at the first write, so reads before it
    # are not isolated: turn them off and say BEGIN ourselves (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA recursive_triggers=ON")  # a REPLACE's implicit delete fires the append-only trigger
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cur.close()


WRITE_OPTIONS = {"screening_write": True}


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for a write transaction (the write lock first, then the reads), BEGIN for a read."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("screening_write") else "BEGIN")


DRIVER_HINTS = {"postgresql": "pip install psycopg2-binary, and use postgresql+psycopg2://"}


def _create(url: str, **options: Any) -> Engine:
    """``create_engine``, with an unknown backend, a missing driver or a malformed URL as one-line ConfigErrors."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as e:
        raise ConfigError(f"--db: {url!r} is neither a file path nor a database URL ({e})") from e
    try:
        return create_engine(url, **options)
    except NoSuchModuleError as e:
        raise ConfigError(
            f"--db: {shown}: no such database backend; use a SQLite file path or postgresql+psycopg2://..."
        ) from e
    except ImportError as e:
        backend = make_url(url).get_backend_name()
        hint = DRIVER_HINTS.get(backend, f"install the Python driver for {backend}")
        raise MissingDependency(
            f"--db: {shown}: its database driver is not installed (no module {e.name}); {hint}"
        ) from e
    except ArgumentError as e:
        raise ConfigError(f"--db: {shown}: {e}") from e


def make_engine(url: str) -> Engine:
    """An engine with the connection settings a project needs on its backend."""
    if url.startswith("sqlite"):
        engine = _create(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = _create(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _postgresql_utc, insert=True)
    return engine


def _postgresql_utc(dbapi_conn: Any, _record: Any) -> None:
    """Times read back in UTC, whatever the server's time zone: days and messages are UTC days."""
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    cur = dbapi_conn.cursor()
    cur.execute("SET TIME ZONE 'UTC'")
    cur.close()
    dbapi_conn.autocommit = autocommit


def serialize(session: Session, name: str) -> None:
    """Let one write transaction at a time past this point for ``name`` (PostgreSQL: an advisory lock).

    For checks that read many rows rather than lock one (who holds which record on screen).
    SQLite needs nothing: a write transaction already excludes every other writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def guard_decisions(session: Session) -> None:
    """Before a decision write reads the state it checks: wait for a stop of the stage that is being written.

    PostgreSQL: ROW EXCLUSIVE on ``decisions`` (what the INSERT takes anyway, taken before the
    reads), which a stop's SHARE ROW EXCLUSIVE excludes; decision writes do not exclude each
    other. SQLite's write transaction already excludes every other writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE decisions IN ROW EXCLUSIVE MODE"))


def lock_rows(session: Session, query: Select[Any]) -> list[Any]:
    """Run ``query`` with ``FOR UPDATE`` (PostgreSQL row locks; on SQLite the transaction holds the write lock)."""
    return list(session.scalars(query.with_for_update()))


@dataclass(frozen=True)
class ProjectCounts:
    records: int
    unique: int
    duplicates: int
    sources: int


class Store:
    """A handle on one project database. Use as a context manager, or call close()."""

    def __init__(self, engine: Engine, *, url: str) -> None:
        self.engine = engine
        self.url = url
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.identity: Identity | None = None  # None: the local administrator (see screening.access)

    def acting_as(self, identity: Identity | None) -> Store:
        """The same project (same engine and connections) for a signed-in identity: its calls are checked.

        Closing the view leaves the project open for the store it came from.
        """
        view = copy.copy(self)
        view.identity = identity
        view._view = True
        return view

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        if not getattr(self, "_view", False):
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path | None:
        """The SQLite file, when the project is one."""
        return sqlite_file(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any error.

        Everything read inside it is what the write is based on: on SQLite no other writer
        can commit in between (``BEGIN IMMEDIATE``); on PostgreSQL lock the rows a check
        depends on with :func:`lock_rows`.
        """
        try:
            with self._sessions() as session:
                session.info[IDENTITY_KEY] = self.identity
                try:
                    with session.begin():
                        session.connection(execution_options=WRITE_OPTIONS)
                        yield session
                except OperationalError as e:
                    raise StoreError(f"database error in {self.url}: {e.orig}") from e
        except AccessError as e:  # rolled back; the refusal itself is kept
            self._log_refusal(e)
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction: every query in it sees the same snapshot of the project."""
        try:
            with self._sessions() as session:
                session.info[IDENTITY_KEY] = self.identity
                if not self.is_sqlite:
                    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                yield session  # closing the session ends the transaction (objects read stay usable)
        except AccessError as e:
            self._log_refusal(e)
            raise

    def _log_refusal(self, error: AccessError) -> None:
        """An ``access_refused`` event in the audit log, in a transaction of its own."""
        actor = error.identity.name if error.identity is not None else "sign-in"
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_OPTIONS)
            audit(session, "access_refused", refusal_detail(error), actor=actor)

    # -- settings and audit ------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.read() as s:
            row = s.get(Setting, key)
            return default if row is None else row.value

    def settings(self) -> dict[str, Any]:
        with self.read() as s:
            return {row.key: row.value for row in s.scalars(select(Setting))}

    def set_setting(self, key: str, value: Any, *, actor: str | None = None) -> None:
        with self.begin() as s:
            set_setting(s, key, value, actor=actor)

    # -- records -----------------------------------------------------------
    def get_record(self, record_id: int) -> Record:
        with self.read() as s:
            record = s.get(Record, record_id)
            if record is None:
                raise RecordNotFound(f"no record with id {record_id} in this project")
            return record

    def counts(self) -> ProjectCounts:
        with self.read() as s:
            total = s.scalar(select(func.count(Record.id))) or 0
            dups = s.scalar(select(func.count(Record.id)).where(Record.canonical_id.is_not(None))) or 0
            sources = s.scalar(select(func.count(Source.id))) or 0
        return ProjectCounts(records=total, unique=total - dups, duplicates=dups, sources=sources)


def set_setting(session: Session, key: str, value: Any, *, actor: str | None = None) -> None:
    """Write a setting inside an open transaction, and log the change (an owner's, when signed in)."""
    require_owner(session, f"change the setting {key!r}")
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
    audit(session, "setting", {"key": key, "value": value}, actor=actor)


def audit(session: Session, action: str, detail: dict[str, Any], *, actor: str | None = None) -> None:
    """Append an event to the audit log, in the caller's transaction.

    In a signed-in identity's transaction (``Store.acting_as``) the actor is that identity,
    whatever the caller says, and the event keeps the email or subject it signed in with.
    """
    identity = session.info.get(IDENTITY_KEY)
    if identity is not None:
        actor = identity.name
        detail = {**detail, "signed_in_as": identity.email or identity.subject}
    session.add(AuditEvent(action=action, detail=detail, actor=actor))


def _migrate(engine: Engine) -> None:
    from .migrations import upgrade

    upgrade(engine)


def _refuse_foreign(url: str, tables: set[str], *, create: bool) -> None:
    """A database that is not a project is never written to: not opened, and not made a project when it holds
    another application's tables (``init`` would add a dozen tables to someone else's file)."""
    shown = make_url(url).render_as_string(hide_password=True)
    if not create:
        raise SchemaError(f"{shown}: not a screening project (no settings table)")
    foreign = sorted(tables - {"alembic_version"})
    if foreign:
        listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise SchemaError(
            f"{shown}: not a screening project, and not empty (it holds the tables {listed}); "
            "create the project in a new file or an empty database"
        )


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite database URL names (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def open_store(db: str | os.PathLike[str] | None = None, *, create: bool = False) -> Store:
    """Open a project, upgrading its schema if it was made by an older version.

    With ``create=False`` a missing SQLite file is an error, so a typo in ``--db``
    never silently makes an empty project.
    """
    url = resolve_url(db)
    engine = make_engine(url)
    store = Store(engine, url=url)
    path = store.path
    if path is not None and not path.exists():
        if not create:
            raise StoreError(f"{path}: no such project; create it with 'screening init {path}'")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tables = set(inspect(engine).get_table_names())
        if "settings" not in tables:
            _refuse_foreign(url, tables, create=create)
        _migrate(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        cause = str(getattr(e, "orig", None) or e).strip().splitlines()[0]  # without SQLAlchemy's "Background" line
        shown = make_url(url).render_as_string(hide_password=True)
        raise StoreError(f"cannot open {shown}: {cause}") from e
    except Exception:
        engine.dispose()
        raise
    return store


def init_project(
    db: str | os.PathLike[str] | None,
    *,
    name: str,
    query: str | None = None,
    criteria: str | None = None,
    actor: str | None = None,
) -> Store:
    """Create a project and record its name and topic; an existing project is refused, not renamed."""
    store = open_store(db, create=True)
    existing = store.get_setting("name")
    if existing is not None:
        store.close()
        shown = make_url(store.url).render_as_string(hide_password=True)
        raise StoreError(
            f"{store.path or shown}: already a screening project ({existing!r}); open it with --db, "
            "or create the new one elsewhere"
        )
    with store.begin() as s:
        set_setting(s, "name", name, actor=actor)
        set_setting(s, "tool_version", __version__, actor=actor)
        if query is not None:
            set_setting(s, "query", query, actor=actor)
        if criteria is not None:
            set_setting(s, "criteria", criteria, actor=actor)
        audit(s, "init", {"name": name}, actor=actor)
    return store
