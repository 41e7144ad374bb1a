"""The project's topic: its name, search query, inclusion criteria and highlight keywords.

These settings say what the review is about. The ranking's cold start reads the query,
the criteria and the include keywords (``screening.ranking.project.topic_text``); the
Screen page highlights the include and exclude keywords. ``screening configure`` and the
dashboard's Setup page change them only through :func:`save_setup`, which checks them and
writes what changed in one audited transaction. Reviewers, exclusion reasons and screening
modes, the rest of a project's setup, live in ``screening.reviewers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import ConfigError, EditConflict
from .schema import Setting
from .store import Store, serialize, set_setting

NAME_SETTING = "name"
QUERY_SETTING = "query"
CRITERIA_SETTING = "criteria"
KEYWORDS_SETTING = "keywords"  # {"include": [...], "exclude": [...]}
SETUP_SETTINGS = (NAME_SETTING, QUERY_SETTING, CRITERIA_SETTING, KEYWORDS_SETTING)


@dataclass(frozen=True)
class ProjectSetup:
    """What the review is about, as the project's settings hold it."""

    name: str
    query: str = ""
    criteria: str = ""
    include_keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()

    def checked(self) -> ProjectSetup:
        """The same setup, cleaned: text stripped, keywords de-duplicated (case ignored, the first spelling kept).

        An empty name, or a keyword in both lists, is a ConfigError.
        """
        name = " ".join((self.name or "").split())
        if not name:
            raise ConfigError("name: must not be empty")
        include = clean_keyword_list(self.include_keywords)
        exclude = clean_keyword_list(self.exclude_keywords)
        both = sorted({w.casefold() for w in include} & {w.casefold() for w in exclude})
        if both:
            raise ConfigError(
                "keywords: " + ", ".join(repr(w) for w in both) + " cannot be both an include and an exclude keyword"
            )
        return ProjectSetup(
            name=name,
            query=(self.query or "").strip(),
            criteria=(self.criteria or "").strip(),
            include_keywords=include,
            exclude_keywords=exclude,
        )

    def settings(self) -> dict[str, Any]:
        """The settings rows this setup is stored as (key -> JSON value)."""
        return {
            NAME_SETTING: self.name,
            QUERY_SETTING: self.query,
            CRITERIA_SETTING: self.criteria,
            KEYWORDS_SETTING: {"include": list(self.include_keywords), "exclude": list(self.exclude_keywords)},
        }


def clean_keyword_list(words: Iterable[object] | str | None) -> tuple[str, ...]:
    """Keywords with their spacing tidied, blanks dropped and repeats (case ignored) removed, in the given order.

    A string is read as a list separated by commas or line breaks (as typed in a text box, or as an older
    or hand-edited setting may hold them).
    """
    if words is None:
        return ()
    if isinstance(words, str):
        words = re.split(r"[,\n]", words)
    seen: set[str] = set()
    out = []
    for word in words:
        word = " ".join(str(word).split())
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(word)
    return tuple(out)


def _setup_from(values: dict[str, Any]) -> ProjectSetup:
    keywords = values.get(KEYWORDS_SETTING)
    keywords = keywords if isinstance(keywords, dict) else {}
    return ProjectSetup(
        name=str(values.get(NAME_SETTING) or ""),
        query=str(values.get(QUERY_SETTING) or ""),
        criteria=str(values.get(CRITERIA_SETTING) or ""),
        include_keywords=clean_keyword_list(keywords.get("include")),
        exclude_keywords=clean_keyword_list(keywords.get("exclude")),
    )


def _stored(session: Session) -> dict[str, Any]:
    rows = session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(SETUP_SETTINGS)))
    return {key: value for key, value in rows}


def read_setup(store: Store) -> ProjectSetup:
    """The project's name, query, criteria and keywords (empty where never set)."""
    with store.read() as s:
        return _setup_from(_stored(s))


def save_setup(
    store: Store, setup: ProjectSetup, *, base: ProjectSetup | None = None, actor: str | None = None
) -> tuple[str, ...]:
    """Check ``setup`` and write the settings that differ from the project's, in one transaction.

    ``base`` is the setup as the editor saw it (the form as drawn): only the settings the
    editor changed from it are written, so a change someone else saved meanwhile to another
    setting is kept; a setting both changed differently is refused (:class:`EditConflict`)
    and nothing is written. Each setting written is audited (a ``setting`` event with its
    new value). Returns the keys written, in :data:`SETUP_SETTINGS` order; none when nothing changed.
    """
    wanted = setup.checked().settings()
    seen = base.settings() if base is not None else None
    with store.begin() as s:
        serialize(s, "project setup")  # compared, then written: one writer at a time
        current = _setup_from(_stored(s)).settings()
        edited = [key for key in SETUP_SETTINGS if seen is None or wanted[key] != seen[key]]
        # edited here, changed there since the form was drawn, and not to the same value
        clashes = [key for key in edited if seen is not None and current[key] not in (seen[key], wanted[key])]
        if clashes:
            raise EditConflict(
                f"{', '.join(clashes)} changed since this form was drawn (someone else saved it): "
                "nothing was saved; reload to see their change, then make yours"
            )
        changed = tuple(key for key in edited if wanted[key] != current[key])
        for key in changed:
            set_setting(s, key, wanted[key], actor=actor)
    return changed
