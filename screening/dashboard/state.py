"""What every page shares: the open project, its warm ranker, and the signed-in reviewer.

The project and the ranker are ``st.cache_resource`` objects keyed by the database
URL, so every browser tab on the same project shares one store and one model; a lock
serialises the ranker between tabs. The reviewer lives in each tab's session state.

With ``[auth]`` in the secrets (a team server, docs/deployment.md) the reviewer is not
picked: it is the identity the provider signed in (:func:`identify`), and every page
gets the project as that identity (:func:`current_store`), so the library checks its role.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from streamlit.errors import StreamlitSecretNotFoundError

from ..access import Identity, sign_in
from ..dedupe import finish_pending_dedupe
from ..demo import build_demo
from ..errors import ConfigError, MissingDependency, ScreeningError
from ..ranking.active import ActiveLearner
from ..ranking.embeddings import INSTALL_HINT, embeddings_available
from ..ranking.project import EMBEDDINGS_SETTING, ProjectRanker, set_embeddings
from ..schema import Stage
from ..stopping import StopVerdict
from ..stops import StopSettings
from ..store import DB_ENV, Store, open_store, resolve_url, sqlite_file

DEFAULT_DB = "data/demo.db"
DB_KEY = "db"
REVIEWER_KEY = "reviewer"
STAGE = Stage.TITLE_ABSTRACT
RANK_WINDOW = 200  # ranked candidates fetched at once when looking for the reviewer's next record


def default_db(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> str:
    """``--db`` after ``--`` on the streamlit command line, else $SCREENING_DB, else the demo."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    args, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    env = os.environ if env is None else env
    return args.db or env.get(DB_ENV) or DEFAULT_DB


PROJECT_PARAM = "project"
REVIEWER_PARAM = "reviewer"


def db_from_url(params: dict[str, Any]) -> str | None:
    """The project named by the page's URL (``?project=review.db``), if any."""
    value = params.get(PROJECT_PARAM)
    return str(value).strip() or None if value else None


def keep_in_url(params: MutableMapping[str, Any], key: str, value: str | None) -> None:
    """Put ``value`` in the URL under ``key`` (or take the key out), so a reload comes back to it.

    A database URL with a password is never put in the address bar: such a project is the
    server's own (``--db``), which a reload opens anyway.
    """
    if value and "://" in value and _has_password(value):
        value = None
    if value:
        if params.get(key) != value:
            params[key] = value
    elif key in params:
        del params[key]


def _has_password(url: str) -> bool:
    try:
        return bool(make_url(url).password)
    except ArgumentError:  # not a URL the store could open either: keep it out of the address bar
        return True


def missing_project_file(db: str) -> bool:
    """``db`` names a project file that does not exist (so the sidebar can offer to create it)."""
    try:
        path = sqlite_file(resolve_url(db))
    except (ArgumentError, ScreeningError):
        return False
    return path is not None and not path.exists()


def ensure_demo(db: str) -> None:
    """Build the bundled demo the first time the default project is opened."""
    if db == DEFAULT_DB and not Path(db).exists():
        build_demo(db).close()


@st.cache_resource(show_spinner="Opening the project…")
def project(db: str) -> Store:
    """The open project; a deduplication an earlier import did not finish is done first."""
    store = open_store(db)
    finish_pending_dedupe(store, actor="dashboard")
    return store


@dataclass
class SharedRanker:
    """One warm ranker per project, used by every tab under a lock.

    Reviewers deciding at once share refreshes: a ranking whose refresh started after a
    caller arrived has read every decision that caller committed before asking, so the
    caller takes it instead of refitting again. Ten reviewers clicking together then wait
    for at most two refits, not ten in a queue.
    """

    ranker: ProjectRanker
    lock: threading.Lock = field(default_factory=threading.Lock)
    _live: tuple[np.ndarray, frozenset[int]] | None = None
    _tickets: Iterator[int] = field(default_factory=itertools.count)  # next() is atomic in CPython
    _last: tuple[int, int | None, list[int]] | None = None  # (ticket the refresh started at, limit, ids)

    def ranked_ids(self, limit: int | None = RANK_WINDOW) -> list[int]:
        """Refresh from the database (new decisions, new records), then the best ``limit`` record ids."""
        arrived = next(self._tickets)
        with self.lock:
            if self._last is not None:
                started, cached_limit, ids = self._last
                if started > arrived and (cached_limit is None or (limit is not None and limit <= cached_limit)):
                    return ids[:limit]
            started = next(self._tickets)
            self.ranker.refresh()
            ids = [r.record_id for r in self.ranker.ranking(limit)]
            self._last = (started, limit, ids)
            return list(ids)

    def live_ids(self) -> frozenset[int]:
        """The live canonical record ids the model ranks (changes only when records are added or merged)."""
        live, ids = self._live, self.ranker.ids
        if live is not None and live[0] is ids:
            return live[1]  # as last built: no wait behind another tab's refit
        with self.lock:
            ids = self.ranker.ids
            if self._live is None or self._live[0] is not ids:
                self._live = (ids, frozenset(int(i) for i in ids))
            return self._live[1]

    def status(self) -> dict[str, object]:
        """What the model knows: labels used, fits so far, strategy, records ranked."""
        with self.lock:
            self.ranker.refresh()
            learner = self.ranker.learner
            labels = learner.labels
            return {
                "strategy": self.ranker.config.strategy,
                "records in the model": int(labels.size),
                "includes learned": int((labels == learner.INCLUDE).sum()),
                "excludes learned": int((labels == learner.EXCLUDE).sum()),
                "maybe (seen, not learned)": int((labels == learner.SEEN).sum()),
                "unlabelled": int((labels == learner.UNLABELED).sum()),
                "model fits so far (this session)": learner.n_fits,
                "ranking by": _ranking_basis(labels, learner, self.ranker.inclusion_prior is not None),
                "features": "TF-IDF + sentence embeddings (screening embed)"
                if learner.embeddings is not None
                else "TF-IDF words and character 4-grams",
            }


def _ranking_basis(labels: np.ndarray, learner: ActiveLearner, inclusion_prior: bool) -> str:
    has_include = bool((labels == learner.INCLUDE).any())
    has_exclude = bool((labels == learner.EXCLUDE).any())
    if has_include and has_exclude:
        return "classifier trained on the decisions"
    if has_include:
        return "similarity to the included records"
    topic = "similarity to the project's query, criteria and keywords"
    return f"{topic}, with the inclusion prior (cold start)" if inclusion_prior else f"{topic} (cold start)"


@st.cache_resource(show_spinner="Loading the ranking model…")
def shared_ranker(db: str) -> SharedRanker:
    ranker = SharedRanker(ProjectRanker(project(db)))
    settle_heap()
    return ranker


def settle_heap() -> None:
    """Keep Python's full garbage collections short once the long-lived objects are loaded.

    A full collection walks every object the server holds (libraries, features, caches):
    about 130 ms at 20,000 records, during which no page is drawn. What is loaded now lives
    as long as the server, so it is collected once and then frozen out of later collections
    (``gc.freeze``); objects freed later are still freed by reference counting.
    """
    gc.collect()
    gc.freeze()


def current_ranker() -> SharedRanker:
    """The project's warm ranker; stops the page with a hint when there is nothing to rank yet."""
    current_store()
    try:
        return shared_ranker(str(current_db()))
    except MissingDependency as e:
        st.error(f"The project ranks with sentence embeddings, which this installation lacks: {e}")
        if st.button("Rank without sentence embeddings", key="embeddings_off"):
            set_embeddings(current_store(), False)
            shared_ranker.clear()
            st.rerun()
        st.stop()
    except ConfigError as e:
        st.info(f"Nothing to rank yet ({e}). Add records on the Search & import page.")
        st.stop()


def embeddings_control(store: Store) -> None:
    """Turn sentence embeddings on (embedding every record once, with a progress bar) or off."""
    on = bool(store.get_setting(EMBEDDINGS_SETTING, False))
    if not on and not embeddings_available():
        st.caption(f"Sentence embeddings (more work saved, about 40 records/s to prepare, once): {INSTALL_HINT}.")
        return
    label = "Rank without sentence embeddings" if on else "Rank with sentence embeddings too"
    if not st.button(label, key="embeddings_toggle"):
        return
    if on:
        set_embeddings(store, False)
    else:
        bar = st.progress(0.0, text="Embedding the records…")

        def advance(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Embedding the records… {done} of {total}")

        set_embeddings(store, True, progress=advance)
        bar.empty()
    shared_ranker.clear()  # the next page load builds the ranker with the new setting
    st.rerun()


@st.cache_data(max_entries=16, show_spinner="Checking the stopping rule…")
def stop_verdict(labels: np.ndarray, pool: int, settings: StopSettings) -> StopVerdict:
    """The stopping rule's verdict on a stage's evidence (``screening.stops.stage_evidence``).

    Shared by the Screen and Progress pages and computed again only when the evidence or
    the rule changes: a verdict reads the whole screening order, and takes seconds on a
    large project.
    """
    return settings.make().verdict(labels, pool)


def current_db() -> str | None:
    return st.session_state.get(DB_KEY)


def current_store() -> Store:
    """The open project; pages call this after ``app.py`` has opened it.

    With sign-in configured it is the project as the signed-in identity
    (``Store.acting_as``): every library call made through it is checked for that
    identity's role, and can act and read only as that reviewer (``screening.access``).
    """
    db = current_db()
    if db is None:
        st.info("Open a project in the sidebar.")
        st.stop()
    store = project(db)
    if not auth_configured():
        return store
    identity = st.session_state.get(IDENTITY_KEY)
    if identity is None or not st.user.is_logged_in:
        st.stop()  # nothing of the project before sign-in (app.py draws the sign-in page)
    return store.acting_as(identity)


def current_reviewer() -> str:
    """The signed-in reviewer; stops the page with a prompt when nobody is signed in."""
    name = st.session_state.get(REVIEWER_KEY)
    if not name:
        st.info("Sign in as a reviewer in the sidebar: decisions are recorded in your name.")
        st.stop()
    return name


# -- sign-in through an identity provider (Streamlit's st.login, configured by [auth]) ----------------
AUTH_SECTION = "auth"
IDENTITY_KEY = "identity"
SCREENING_SECTION = "screening"  # secrets.toml: [screening] trust_unverified_email = true (see docs/deployment.md)


def auth_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` (or ``--secrets.files``) has an ``[auth]`` section."""
    try:
        return AUTH_SECTION in st.secrets
    except StreamlitSecretNotFoundError:  # no secrets file at all: the laptop and the demo
        return False


def _trust_unverified_email() -> bool:
    try:
        return bool(st.secrets.get(SCREENING_SECTION, {}).get("trust_unverified_email", False))
    except StreamlitSecretNotFoundError:
        return False


def user_claims() -> dict[str, Any]:
    """What the identity provider said of the signed-in user (``st.user``); empty when signed out."""
    if not st.user.is_logged_in:
        return {}
    return {k: v for k, v in st.user.to_dict().items() if isinstance(v, str | bool | int | float)}


def identify(store: Store) -> Identity:
    """The reviewer the signed-in user is, by provider subject or verified email; AccessError (logged) if none.

    ``email_verified`` is the provider's word; a provider that never sends it (Microsoft Entra)
    needs ``[screening] trust_unverified_email = true``, or reviewers added by ``--subject``.
    """
    claims = user_claims()
    verified = claims.get("email_verified") in (True, "true", "True") or _trust_unverified_email()
    identity = sign_in(
        store,
        email=claims.get("email") or None,
        email_verified=verified,
        subject=claims.get("sub") or None,
        issuer=claims.get("iss") or None,
    )
    st.session_state[IDENTITY_KEY] = identity
    st.session_state[REVIEWER_KEY] = identity.name
    return identity


def forget_identity() -> None:
    """Before signing out: this tab no longer acts as anyone."""
    st.session_state.pop(IDENTITY_KEY, None)
    st.session_state.pop(REVIEWER_KEY, None)
