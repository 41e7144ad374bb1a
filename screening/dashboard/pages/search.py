"""Search & import: a PubMed search with a progress bar, file imports in every importer format, the search log."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from screening.dashboard import state
from screening.dedupe import dedupe
from screening.errors import AlreadyImported, ImportFormatError, ScreeningError
from screening.ingest import import_file
from screening.queries import status
from screening.sources.files import FORMATS
from screening.sources.pubmed import EutilsClient, resolve_config
from screening.sources.pubmed_search import resume_search, search_log, search_pubmed, unfinished_search

KINDS = ("database", "register", "website", "organisation", "citation")
AUTO = "detect from the file"

store = state.current_store()
actor = st.session_state.get(state.REVIEWER_KEY) or "dashboard"


def progress_bar() -> Callable[[int, int], None]:
    """A progress bar and the callback the search library reports (done, total) to."""
    bar = st.progress(0.0, text="Starting…")

    def on_progress(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done:,} of {total:,} records")

    return on_progress


def run_search(query: str, email: str, api_key: str, eutils_url: str, mindate: str, maxdate: str, resume: bool) -> None:
    """Search PubMed (or finish the interrupted search) through the library, showing progress."""
    config = resolve_config(store, email=email or None, api_key=api_key or None, eutils_url=eutils_url or None)
    on_progress = progress_bar()
    with EutilsClient.from_config(config) as client:
        if resume:
            outcome = resume_search(store, client, on_progress=on_progress, actor=actor)
        else:
            outcome = search_pubmed(
                store,
                client,
                query,
                mindate=mindate or None,
                maxdate=maxdate or None,
                on_progress=on_progress,
                actor=actor,
            )
    st.success(
        f"Search #{outcome.source_id} finished: PubMed reported {outcome.count_reported}, retrieved "
        f"{outcome.count_retrieved}, new after deduplication {outcome.count_new}."
    )
    for warning in outcome.warnings:
        st.warning(warning)


def search_form() -> None:
    st.subheader("Search PubMed")
    pending = unfinished_search(store)
    with st.form("search_form"):
        query = st.text_area("PubMed query", value=store.get_setting("query") or "", key="search_query")
        left, right = st.columns(2)
        email = left.text_input("Contact email (NCBI asks for one)", key="search_email")
        api_key = right.text_input("NCBI API key (optional)", type="password", key="search_api_key")
        mindate = left.text_input("From date (YYYY, YYYY/MM or YYYY/MM/DD)", key="search_mindate")
        maxdate = right.text_input("To date", key="search_maxdate")
        eutils_url = st.text_input("E-utilities URL (leave empty for NCBI)", key="search_eutils_url")
        resume = st.checkbox(f"Finish interrupted search #{pending}", key="search_resume") if pending else False
        if st.form_submit_button("Search"):
            try:
                run_search(query, email, api_key, eutils_url, mindate, maxdate, bool(resume))
            except ScreeningError as e:
                st.error(str(e))


SHOWN_NOTICES = 20


def import_upload(upload: UploadedFile, source: str, kind: str, fmt: str, again: bool) -> None:
    """Save the upload under its own name in a temporary folder, import it, then deduplicate."""
    name = Path(upload.name).name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(upload.getvalue())
        try:
            result = import_file(
                store, path, source_name=source, kind=kind, fmt=None if fmt == AUTO else fmt, actor=actor, again=again
            )
        except ImportFormatError as e:  # the reviewer's own file name, not the temporary folder's
            raise ImportFormatError(name, e.where, e.field, e.problem) from e
        except AlreadyImported as e:
            raise AlreadyImported(str(e).replace(str(path), name)) from e
    merged = dedupe(store, actor=actor)
    st.success(
        f"{name}: {result.count} records imported as {source!r} ({result.labels} with labels); "
        f"{merged.new_duplicates} new duplicates found, {merged.uncertain} pairs left for review."
    )
    for item in result.notices[:SHOWN_NOTICES]:
        st.warning(f"{name}: {str(item).removeprefix(item.path).lstrip(': ')}")
    if len(result.notices) > SHOWN_NOTICES:
        st.warning(f"… and {len(result.notices) - SHOWN_NOTICES} more warnings (see the audit log)")


def import_form() -> None:
    st.subheader("Import a file")
    st.caption(
        "PubMed XML, MEDLINE (.nbib/.txt), RIS (Embase, Scopus, Web of Science, Ovid...), CSV, TSV, XLSX, BibTeX."
    )
    # the form keeps the file after an error, to fix the source name and import again (a second import
    # of a file already imported is refused by its content, so keeping it after success is safe too)
    with st.form("import_form", clear_on_submit=False):
        upload = st.file_uploader("Export file", key="import_file")
        left, mid, right = st.columns(3)
        source = left.text_input("Source name (e.g. Embase)", key="import_source")
        kind = mid.selectbox("Kind", KINDS, key="import_kind")
        fmt = right.selectbox("Format", [AUTO, *FORMATS], key="import_format")
        again = st.checkbox("Import again, although this file was imported before", key="import_again")
        if st.form_submit_button("Import"):
            if upload is None or not source.strip():
                st.error("Choose a file and name its source.")
                return
            try:
                import_upload(upload, source.strip(), kind, fmt, again)
            except ImportFormatError as e:
                st.error(
                    f"Not imported, the project is unchanged. {e.path}: {e.where or ''} "
                    f"{'field ' + repr(e.field) if e.field else ''}: {e.problem}"
                )
            except ScreeningError as e:
                st.error(str(e))


def log_table() -> None:
    st.subheader("Search log (PRISMA-S)")
    entries = search_log(store)
    if entries:
        st.dataframe([e.__dict__ for e in entries], hide_index=True)
    else:
        st.info("No PubMed search yet.")
    st.subheader("Sources")
    st.dataframe(
        [
            {
                "source": s.name,
                "kind": s.kind,
                "how": s.method,
                "file or query": s.detail,
                "run": s.run_at,
                "reported": s.count_reported,
                "retrieved": s.retrieved,
                "unique": s.unique,
            }
            for s in status(store).sources
        ],
        hide_index=True,
    )


st.header("Search & import")
search_form()
import_form()
log_table()
