"""PRISMA 2020: the flow diagram and its downloads, only when the counts add up."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import streamlit as st

from screening.dashboard import state
from screening.prisma import (
    AWAITING_WORDS,
    PrismaCounts,
    PrismaIdentityError,
    checked_counts,
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
try:
    counts = checked_counts(store, provisional=True)
except PrismaIdentityError as e:  # the flow does not account for every record: a fault, not unfinished work
    st.error("The PRISMA counts do not add up, so no diagram is drawn:\n\n" + "\n".join(f"- {f}" for f in e.failures))
    with st.expander("Counts so far"):
        st.json(to_json(prisma_counts(store)))
    st.stop()
summary = to_json(counts)
if counts.provisional:
    awaiting = ", ".join(f"{n:,} {AWAITING_WORDS[step]}" for step, n in counts.awaiting.items() if n)
    st.warning(
        f"**Provisional**: the review is not finished ({awaiting}). The diagram and downloads are marked "
        "PROVISIONAL; the final diagram comes when nothing awaits (`screening prisma` refuses until then)."
    )
st.caption(
    "Counts unique records after deduplication, by the first source that delivered each; "
    "records removed before screening (duplicates, retracted or withdrawn, automation) are not screened."
)

svg = to_svg(counts)
st.image(svg, caption="PRISMA 2020 flow diagram" + (" (provisional)" if counts.provisional else ""))
cols = st.columns(4)
cols[0].download_button("CSV (PRISMA2020 template)", to_template_csv(counts), "prisma.csv", "text/csv", key="dl_csv")
cols[1].download_button("JSON", json.dumps(summary, indent=2), "prisma.json", "application/json", key="dl_json")
cols[2].download_button("SVG", svg, "prisma.svg", "image/svg+xml", key="dl_svg")
cols[3].download_button("PNG", png_bytes(counts), "prisma.png", "image/png", key="dl_png")
with st.expander("Counts"):
    st.json(summary)
