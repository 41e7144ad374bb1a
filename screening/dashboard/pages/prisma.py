"""PRISMA 2020: the flow diagram and its downloads, only when the counts add up."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import streamlit as st

from screening.dashboard import state
from screening.prisma import (
    PrismaCounts,
    PrismaIdentityError,
    check_identities,
    prisma_counts,
    to_json,
    to_template_csv,
)
from screening.prisma_diagram import to_png, to_svg

store = state.current_store()


def png_bytes(counts: PrismaCounts) -> bytes:
    """The PNG diagram, drawn to a temporary file by the library and read back."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prisma.png"
        to_png(counts, path)
        return path.read_bytes()


st.header("PRISMA 2020")
counts = prisma_counts(store)
summary = to_json(counts)
try:
    check_identities(counts)
except PrismaIdentityError as e:
    st.error(
        "The PRISMA counts do not add up yet, so no diagram is drawn. Unfinished work:\n\n"
        + "\n".join(f"- {failure}" for failure in e.failures)
    )
    with st.expander("Counts so far"):
        st.json(summary)
    st.stop()

svg = to_svg(counts)
st.image(svg, caption="PRISMA 2020 flow diagram")
cols = st.columns(4)
cols[0].download_button("CSV (PRISMA2020 template)", to_template_csv(counts), "prisma.csv", "text/csv", key="dl_csv")
cols[1].download_button("JSON", json.dumps(summary, indent=2), "prisma.json", "application/json", key="dl_json")
cols[2].download_button("SVG", svg, "prisma.svg", "image/svg+xml", key="dl_svg")
cols[3].download_button("PNG", png_bytes(counts), "prisma.png", "image/png", key="dl_png")
with st.expander("Counts"):
    st.json(summary)
