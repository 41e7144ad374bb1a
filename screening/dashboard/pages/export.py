"""Export: the project's unique records (all, included, excluded or undecided) as CSV, RIS or BibTeX."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from screening.dashboard import state
from screening.export import EXPORT_FORMATS
from screening.queries import EXPORT_SELECTIONS, export_rows

SUFFIX = {"csv": ".csv", "ris": ".ris", "bibtex": ".bib"}
MIME = {"csv": "text/csv", "ris": "application/x-research-info-systems", "bibtex": "application/x-bibtex"}

store = state.current_store()


def export_bytes(what: str, fmt: str) -> tuple[bytes, int]:
    """The export file as written by the library's writer, and its number of records."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{SUFFIX[fmt]}"
        n = EXPORT_FORMATS[fmt](export_rows(store, what), path)
        return path.read_bytes(), n


st.header("Export")
st.caption("One row per unique record, with every source it came from and its decision.")
left, right = st.columns(2)
what = left.selectbox("Records", EXPORT_SELECTIONS, key="export_what")
fmt = right.selectbox("Format", list(EXPORT_FORMATS), key="export_format")
data, n = export_bytes(what, fmt)
st.write(f"{n} records.")
st.download_button(f"Download {what} records ({fmt})", data, f"{what}{SUFFIX[fmt]}", MIME[fmt], key="export_download")
