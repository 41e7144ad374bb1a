"""The Screen page as a workbench, through Streamlit's AppTest, on a real project of eight records.

The inclusion criteria sit beside the record, the decision bar is drawn above the record
text with Include green and Exclude red, a title-stage exclusion reason can be picked
under the buttons (number keys), a value typed for one record is never recorded with
another, and messages name the record by its title.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Column
from test_dashboard import FIXTURES, decide_on_screen, decisions, open_app, shown_record, small  # noqa: F401 - fixtures

from screening.dashboard.text import DECISION_COLOURS, TITLE_LIMIT, decision_bar_css, short_title
from screening.decisions import decide, record_status
from screening.ingest import import_file
from screening.queries import find_records
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
def pick_list(at: AppTest, record: int):
    return at.pills(key=f"screen_pick_{record}")


def test_picking_a_reason_beside_exclude_records_it(workbench: Path) -> None:
    at = open_app("alice")
    record = shown_record(at)
    assert pick_list(at, record).options == [f"{n} · {r}" for n, r in enumerate(REASONS, start=1)]
    pick_list(at, record).select("Not about pain").run()
    decide_on_screen(at, "exclude")
    with open_store(workbench) as store:
        outcome = record_status(store, record).title_abstract
    assert (outcome.value, outcome.reason) == ("exclude", "Not about pain")
    following = shown_record(at)
    assert following != record and pick_list(at, following).value is None  # nothing picked for the next record
    assert any("(Not about pain)" in s.value for s in at.success)


def test_a_picked_reason_is_not_given_to_an_include_and_a_typed_one_is_kept(workbench: Path) -> None:
    at = open_app("alice")
    first = shown_record(at)
    pick_list(at, first).select("Animal study").run()
    decide_on_screen(at, "include")
    second = shown_record(at)
    pick_list(at, second).select("Animal study").run()
    at.text_input(key=f"screen_reason_{second}").input("rats").run()
    decide_on_screen(at, "exclude")
    assert decisions(workbench) == [
        (first, "alice", "title_abstract", "include", "screen", None, None, None),
        (second, "alice", "title_abstract", "exclude", "screen", "Animal study", "rats", None),
    ]


def test_a_reason_typed_for_one_record_never_reaches_another(workbench: Path) -> None:
    """A value that reaches the server after its record was decided (a slow browser) is not recorded with the next."""
    at = open_app("alice")
    first = shown_record(at)
    decide_on_screen(at, "include")
    second = shown_record(at)
    at.session_state[f"screen_reason_{first}"] = "mice in a model of migraine"  # the late value of the first box
    at.session_state[f"screen_pick_{first}"] = "Animal study"
    at.run()
    decide_on_screen(at, "exclude")
    assert [row[5:7] for row in decisions(workbench)] == [(None, None), (None, None)]
    assert at.text_input(key=f"screen_reason_{shown_record(at)}").value == ""
    assert second != shown_record(at)


def test_number_keys_are_bound_to_the_reasons_in_their_order(workbench: Path) -> None:
    at = open_app("alice")
    scripts = [e.proto.srcdoc for e in at.get("iframe") if "screeningShortcuts" in e.proto.srcdoc]
    assert len(scripts) == 1
    assert '"1": "screen_pick_#0"' in scripts[0] and '"2": "screen_pick_#1"' in scripts[0]
    assert '"3"' not in scripts[0]  # two reasons, two number keys


def test_no_reason_pick_list_without_title_stage_reasons(small: Path) -> None:  # noqa: F811 - full-text reasons only
    at = open_app("alice")
    assert not list(at.pills)
    assert "screen_pick_#" not in "".join(e.proto.srcdoc for e in at.get("iframe"))


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


# -- find and mark known includes -------------------------------------------------------------------------
def test_find_records_by_words_pmid_and_doi_with_only_the_searchers_vote(small: Path) -> None:  # noqa: F811
    with open_store(small) as store:
        by_words = find_records(store, "ketamine BUPIVACAINE", reviewer="alice")
        with open(FIXTURES / "pain_small.csv", encoding="utf-8") as f:
            expected = {
                row["title"]
                for row in csv.DictReader(f)
                if all(w in (row["title"] + " " + row["abstract"]).lower() for w in ("ketamine", "bupivacaine"))
            }
        assert 0 < len(expected) < 8 and {h.title for h in by_words} == expected
        [hit] = find_records(store, "PMID: 10467917", reviewer="alice")
        assert hit.title.startswith("Use and efficacy of low-dose ketamine") and hit.my_vote is None
        assert find_records(store, "10467917", reviewer="alice") == [hit]
        decide(store, hit.record_id, "maybe", reviewer="bob")
        assert find_records(store, "10467917", reviewer="alice")[0].my_vote is None  # bob's vote is not alice's
        assert find_records(store, "10467917", reviewer="bob")[0].my_vote == "maybe"
        assert find_records(store, "no such words anywhere", reviewer="alice") == []
        assert find_records(store, "   ", reviewer="alice") == []
        assert find_records(store, "100%_", reviewer="alice") == []  # LIKE wildcards are plain characters


def test_find_records_by_doi_and_shows_a_duplicate_as_its_canonical_record(tmp_path: Path) -> None:
    from screening.dedupe import dedupe
    from screening.reviewers import add_reviewer
    from screening.store import init_project

    rows = "title,abstract,doi,year\nKetamine for fibromyalgia,A trial.,10.1000/ABC.1,2020\n"
    (tmp_path / "a.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "b.csv").write_text(rows.replace("Ketamine", "KETAMINE"), encoding="utf-8")
    with init_project(tmp_path / "p.db", name="p") as store:
        import_file(store, tmp_path / "a.csv", source_name="A", kind="database")
        import_file(store, tmp_path / "b.csv", source_name="B", kind="database")
        dedupe(store)
        add_reviewer(store, "alice")
        for text in ("https://doi.org/10.1000/abc.1", "doi:10.1000/ABC.1", "fibromyalgia ketamine"):
            hits = find_records(store, text, reviewer="alice")
            assert [h.record_id for h in hits] == [1], text  # one group, shown as its canonical record


def test_a_known_include_is_found_and_marked_from_the_screen_page(workbench: Path) -> None:
    at = open_app("alice")
    assert at.expander[0].label == "Find and mark known includes" and at.expander[0].proto.expanded
    at.text_input(key="screen_find").input("10467917").run()
    [button] = [b for b in at.button if b.key and b.key.startswith("known_include_")]
    record = int(button.key.rsplit("_", 1)[1])
    button.click().run()
    assert not at.exception
    [row] = decisions(workbench)
    assert row[:5] == (record, "alice", "title_abstract", "include", "screen") and "known include" in row[6]
    assert any("marked include as a known include" in s.value for s in at.success)
    assert at.expander[0].proto.expanded  # still open while a search is typed, for the next known include
    assert "Included" in [c.value for c in at.caption]
    assert shown_record(at) != record  # the screening queue goes on without it


def test_a_maybe_found_by_search_is_changed_to_include(workbench: Path) -> None:
    at = open_app("alice")
    first = shown_record(at)
    decide_on_screen(at, "maybe")
    pmid = title_pmid(workbench, first)
    at.text_input(key="screen_find").input(pmid).run()
    at.button(key=f"known_include_{first}").click().run()
    assert [(r[0], r[3], r[4]) for r in decisions(workbench)] == [
        (first, "maybe", "screen"),
        (first, "undo", "screen"),  # a revision: an undo of the maybe, then the include
        (first, "include", "screen"),
    ]


def title_pmid(db: Path, record_id: int) -> str:
    with open_store(db) as store:
        return store.get_record(record_id).pmid
