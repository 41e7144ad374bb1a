"""Streamlit dashboard entry point: `streamlit run app.py -- --db PROJECT`.

It only routes and draws: every number comes from `screening.*`, the same code
the CLI runs.
"""

from __future__ import annotations

import argparse
import os
import sys

import streamlit as st

from screening.errors import ScreeningError
from screening.queries import status
from screening.store import DB_ENV, Store, open_store

DEFAULT_DB = "data/demo.db"


def default_db() -> str:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.db or os.environ.get(DB_ENV) or DEFAULT_DB


@st.cache_resource
def project(db: str) -> Store:
    return open_store(db)


st.set_page_config(page_title="screening", layout="wide")
db = st.sidebar.text_input("Project (file path or database URL)", value=default_db())
try:
    report = status(project(db))
except ScreeningError as e:
    st.error(str(e))
    st.stop()

st.title(report.name or "Review project")
cols = st.columns(4)
cols[0].metric("Records imported", report.records)
cols[1].metric("Unique records", report.unique)
cols[2].metric("Duplicates", report.duplicates)
cols[3].metric("Uncertain pairs", report.uncertain_pairs)
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
        for s in report.sources
    ],
    hide_index=True,
    use_container_width=True,
)
st.subheader("Screening")
for stage, counts in report.stages.items():
    st.write(f"**{stage.replace('_', '/')}**: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing yet"))
