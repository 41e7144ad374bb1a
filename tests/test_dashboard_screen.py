"""The Screen page as a workbench, through Streamlit's AppTest, on a real project of eight records.

The inclusion criteria sit beside the record, the decision bar is drawn above the record
text with Include green and Exclude red, a title-stage exclusion reason can be picked
beside Exclude, and messages name the record by its title.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Column
from test_dashboard import decide_on_screen, decisions, open_app, shown_record, small  # noqa: F401 - fixtures

from screening.dashboard.text import DECISION_COLOURS, TITLE_LIMIT, decision_bar_css, short_title
from screening.decisions import record_status
from screening.reviewers import add_reason
from screening.store import open_store

CRITERIA = "Adults with chronic pain.\nRandomised trials of ketamine <b>only</b>."
REASONS = ("Animal study", "Not about pain")
STREAMLIT_RED = "#ff4b4b"  # the default theme's primary colour


@pytest.fixture
def workbench(small: Path) -> Path:  # noqa: F811 - the fixture imported above
    """The small project with inclusion criteria and title-stage exclusion reasons."""
    with open_store(small) as store:
        store.set_setting("criteria", CRITERIA, actor="alice")
        for reason in REASONS:
            add_reason(store, reason, stage="title_abstract")
    return small


def flat(at: AppTest) -> list[tuple[tuple[int, ...], object]]:
    """Every node of the main area in drawing order, with the path of columns it sits in (their ids)."""
    out: list[tuple[tuple[int, ...], object]] = []

    def walk(node, columns: tuple[int, ...]) -> None:
        out.append((columns, node))
        if isinstance(node, Column):
            columns = (*columns, id(node))
        for child in getattr(node, "children", {}).values():
            walk(child, columns)

    walk(at.main, ())
    return out


def position(nodes, match) -> int:
    found = [i for i, (_, node) in enumerate(nodes) if match(node)]
    assert found, "element not on the page"
    return found[0]


def is_record(node) -> bool:
    return getattr(node, "type", None) == "html" and "record-title" in node.value


def is_criteria(node) -> bool:
    return getattr(node, "type", None) == "html" and "Inclusion criteria" in node.value


def title_of(db: Path, record_id: int) -> str:
    with open_store(db) as store:
        return record_status(store, record_id).title


# -- criteria -----------------------------------------------------------------------------------------
def test_criteria_are_shown_beside_the_record(workbench: Path) -> None:
    at = open_app("alice")
    nodes = flat(at)
    criteria_cols, criteria = nodes[position(nodes, is_criteria)]
    record_cols, _ = nodes[position(nodes, is_record)]
    assert "Adults with chronic pain.\nRandomised trials of ketamine &lt;b&gt;only&lt;/b&gt;." in criteria.value
    assert criteria_cols and record_cols and criteria_cols[0] != record_cols[0]  # two columns side by side
    assert criteria_cols[0] not in record_cols


def test_no_criteria_panel_without_criteria(small: Path) -> None:  # noqa: F811
    at = open_app("alice")
    assert not [h for h in at.html if "Inclusion criteria" in h.value]
    assert any(is_record(n) for _, n in flat(at))


# -- the decision bar ---------------------------------------------------------------------------------
def test_buttons_are_drawn_above_the_record_with_include_green_and_exclude_red(workbench: Path) -> None:
    at = open_app("alice")
    record = shown_record(at)
    nodes = flat(at)
    record_at = position(nodes, is_record)
    for value in ("include", "exclude", "maybe"):
        assert position(nodes, lambda n, v=value: getattr(n, "key", None) == f"decide_{v}_{record}") < record_at
    assert at.button(key=f"decide_include_{record}").proto.type == "primary"
    assert at.button(key=f"decide_maybe_{record}").proto.type == "secondary"  # neutral, no colour rule
    css = decision_bar_css()
    assert any(css in h.value for h in at.html)  # the style is on the page
    include_fill, exclude_fill = DECISION_COLOURS["include"][0], DECISION_COLOURS["exclude"][0]
    reds = {exclude_fill, *DECISION_COLOURS["exclude"], STREAMLIT_RED}

    def rules(value: str, state: str = "") -> list[str]:
        return re.findall(rf"st-key-decide_{value}_'\] button{state}[^{{]*\{{([^}}]*)\}}", css)

    assert [f"background-color: {include_fill}" in r for r in rules("include", " ")] == [True]
    assert [f"background-color: {exclude_fill}" in r for r in rules("exclude", " ")] == [True]
    assert rules("include", ":hover") and not any(red in r.lower() for r in rules("include") for red in reds)
    assert "decide_maybe_" not in css


def test_maybe_says_it_is_not_learned_beside_the_button(workbench: Path) -> None:
    at = open_app("alice")
    record = shown_record(at)
    nodes = flat(at)
    maybe_cols, _ = nodes[position(nodes, lambda n: getattr(n, "key", None) == f"decide_maybe_{record}")]
    caption_cols, caption = nodes[position(nodes, lambda n: "not learned" in str(getattr(n, "value", "")))]
    assert caption_cols == maybe_cols
    assert "includes and excludes only" in caption.value


# -- title-stage reasons --------------------------------------------------------------------------------
def test_picking_a_reason_beside_exclude_records_it(workbench: Path) -> None:
    at = open_app("alice")
    assert at.selectbox(key="screen_exclude_reason").options == list(REASONS)
    record = shown_record(at)
    at.selectbox(key="screen_exclude_reason").select("Not about pain").run()
    decide_on_screen(at, "exclude")
    with open_store(workbench) as store:
        outcome = record_status(store, record).title_abstract
    assert (outcome.value, outcome.reason) == ("exclude", "Not about pain")
    assert at.selectbox(key="screen_exclude_reason").value is None  # cleared for the next record
    assert any("(Not about pain)" in s.value for s in at.success)


def test_a_picked_reason_is_not_given_to_an_include_and_a_typed_one_is_kept(workbench: Path) -> None:
    at = open_app("alice")
    first = shown_record(at)
    at.selectbox(key="screen_exclude_reason").select("Animal study").run()
    decide_on_screen(at, "include")
    second = shown_record(at)
    at.selectbox(key="screen_exclude_reason").select("Animal study").run()
    at.text_input(key="screen_reason").input("rats").run()
    decide_on_screen(at, "exclude")
    assert decisions(workbench) == [
        (first, "alice", "title_abstract", "include", "screen", None, None, None),
        (second, "alice", "title_abstract", "exclude", "screen", "Animal study", "rats", None),
    ]


def test_no_reason_pick_list_without_title_stage_reasons(small: Path) -> None:  # noqa: F811 - full-text reasons only
    at = open_app("alice")
    assert not [s for s in at.selectbox if s.key == "screen_exclude_reason"]


# -- messages name the title ----------------------------------------------------------------------------
def test_confirmations_name_the_records_title(workbench: Path) -> None:
    at = open_app("alice")
    record = shown_record(at)
    named = short_title(title_of(workbench, record), record)
    decide_on_screen(at, "maybe")
    assert any(s.value.startswith(f"{named} marked maybe") for s in at.success), [s.value for s in at.success]
    at.button(key="undo").click().run()
    assert any(named in i.value for i in at.info), [i.value for i in at.info]


def test_short_title_cuts_long_titles_and_falls_back_to_the_id() -> None:
    long = "word " * 40
    cut = short_title(long, 7)
    assert cut.startswith("“word") and cut.endswith("…”") and len(cut) <= TITLE_LIMIT + 2
    assert short_title("  A   title ", 7) == "“A title”"
    assert short_title("", 7) == short_title(None, 7) == "record 7"
