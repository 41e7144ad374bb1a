"""The one exception tree of the package.

    ScreeningError
    ├── ConfigError (ValueError)        bad option, setting or argument
    │   └── MissingDependency           an optional package a setting needs is not installed
    ├── StoreError                      the project database cannot be opened or used
    │   ├── SchemaError                 the database is from a newer version, or not a project
    │   └── RecordNotFound (LookupError)
    ├── ImportFormatError (ValueError)  a file being imported is malformed
    ├── AlreadyImported (ValueError)    the file's content is in the project already
    ├── SourceError                     a remote source (PubMed) failed
    ├── AccessError                     the signed-in identity may not do this (screening.access)
    └── DecisionError (ValueError)      a screening decision breaks a rule
        └── AlreadyDecided              the record was decided already (maybe a moment ago, by someone else)

Library code raises these, wrapping other libraries' errors with ``raise ... from e``.
Only the CLI and the dashboard turn them into messages and exit codes.
"""

from __future__ import annotations

from typing import Any


class ScreeningError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(ScreeningError, ValueError):
    """An option, setting or argument has a bad value."""


class MissingDependency(ConfigError):
    """A setting needs an optional package that is not installed; the message says how to install it."""


class StoreError(ScreeningError):
    """The project database cannot be opened or used."""


class SchemaError(StoreError):
    """The database is not a screening project, or is newer than this version."""


class DedupeError(StoreError):
    """A verdict on a duplicate pair that cannot be carried out as asked."""


class RecordNotFound(StoreError, LookupError):
    """No record has the given project id."""


class ImportFormatError(ScreeningError, ValueError):
    """A file being imported is malformed; says which file, where, and which field."""

    def __init__(self, path: str, where: str | None, field: str | None, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.field = field
        self.problem = problem
        parts = [self.path]
        if where:
            parts.append(where)
        if field:
            parts.append(f"field {field!r}")
        super().__init__(f"{': '.join(parts)}: {problem}")

    def __reduce__(self) -> tuple:
        # rebuilt from its four parts when it crosses a process boundary (parallel import)
        return (type(self), (self.path, self.where, self.field, self.problem))


class AlreadyImported(ScreeningError, ValueError):
    """The file's content was imported into the project before (found by its hash)."""


class SourceError(ScreeningError):
    """A remote source such as PubMed failed after every retry."""


class AccessError(ScreeningError):
    """The signed-in identity may not do this: not on the project, the wrong role, or not themselves.

    ``identity`` is who asked (None at sign-in), ``doing`` what was refused, ``claimed`` what an
    identity provider said of a user it refused at sign-in. The store logs every refusal.
    """

    def __init__(
        self, message: str, identity: Any = None, doing: str = "", *, claimed: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.identity = identity
        self.doing = doing
        self.claimed = claimed or {}

    def __reduce__(self) -> tuple:
        return (_rebuild_access_error, (str(self), self.identity, self.doing, self.claimed))


def _rebuild_access_error(message: str, identity: Any, doing: str, claimed: dict[str, Any]) -> AccessError:
    return AccessError(message, identity, doing, claimed=claimed)


class EditConflict(ScreeningError):
    """A setting was changed by someone else after the form that would overwrite it was drawn."""


class DecisionError(ScreeningError, ValueError):
    """A screening decision breaks a rule of the project."""


class AlreadyDecided(DecisionError):
    """The record no longer takes this reviewer's decision: someone decided it (perhaps a moment ago).

    ``decided_by`` names who, so a page can say so and offer a revision.
    """

    def __init__(
        self, message: str, *, record_id: int, decided_by: tuple[str, ...] = (), value: str | None = None
    ) -> None:
        super().__init__(message)
        self.record_id = record_id
        self.decided_by = decided_by
        self.value = value

    def __reduce__(self) -> tuple:
        return (_rebuild_already_decided, (str(self), self.record_id, self.decided_by, self.value))


def _rebuild_already_decided(
    message: str, record_id: int, decided_by: tuple[str, ...], value: str | None
) -> AlreadyDecided:
    return AlreadyDecided(message, record_id=record_id, decided_by=decided_by, value=value)
