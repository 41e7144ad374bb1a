"""The dashboard's main path on every page, through Streamlit's AppTest, on real copies of the demo project.

Each test drives ``app.py`` as a reviewer would (sign in from the sidebar, click, type)
and then checks what the database holds.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from eutils_server import EutilsServer, load_corpus
from streamlit.testing.v1 import AppTest

from screening.dashboard.shortcuts import shortcut_script
from screening.dashboard.state import default_db
from screening.dashboard.text import highlight, record_html
from screening.decisions import decide, set_retrieval
from screening.demo import build_demo
from screening.errors import ConfigError
from screening.ingest import import_file
from screening.reviewers import add_reason, add_reviewer, set_mode
from screening.store import DB_ENV, Store, init_project, open_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dashboard"
PAGES = "screening/dashboard/pages"
TIMEOUT = 90


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    build_demo(path).close()
    return path


@pytest.fixture
def demo(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the demo with reviewers alice, bob and carol; the app opens it through $SCREENING_DB."""
    path = tmp_path / "demo.db"
    shutil.copy(demo_db, path)
    with open_store(path) as store:
        for name in ("alice", "bob", "carol"):
            add_reviewer(store, name)
    monkeypatch.setenv(DB_ENV, str(path))
    return path


@pytest.fixture
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eight real records (psychedelic and pain terms), with reviewers and full-text reasons."""
    path = tmp_path / "small.db"
    with init_project(path, name="Small review", query="ketamine chronic pain") as store:
        import_file(store, FIXTURES / "pain_small.csv", source_name="Citation searching", kind="database")
        for name in ("alice", "bob"):
            add_reviewer(store, name)
        for reason in ("Wrong population", "Wrong study design"):
            add_reason(store, reason, stage="full_text")
    monkeypatch.setenv(DB_ENV, str(path))
    return path


def open_app(reviewer: str | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if reviewer:
        at.sidebar.selectbox(key="reviewer").select(reviewer).run()
    if page:
        at.switch_page(f"{PAGES}/{page}.py").run()
    assert not at.exception, at.exception
    return at


def shown_record(at: AppTest) -> int:
    captions = [c.value for c in at.caption if c.value.startswith("Record ")]
    assert captions, "no record on screen"
    return int(captions[0].split()[1])


def decide_on_screen(at: AppTest, value: str) -> None:
    """Click Include, Exclude or Maybe under the record on screen (the buttons' keys carry the record id)."""
    at.button(key=f"decide_{value}_{shown_record(at)}").click().run()


def decisions(db: Path) -> list[tuple]:
    """(record id, reviewer, stage, value, kind, reason, note, undoes_id) of every decision, in order."""
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT d.record_id, r.name, d.stage, d.value, d.kind, d.reason, d.note, d.undoes_id "
            "FROM decisions d JOIN reviewers r ON r.id = d.reviewer_id ORDER BY d.id"
        ).fetchall()


# -- project and reviewer -----------------------------------------------------------------------------
def test_default_db_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_db(["app.py", "--db", "x.db"], env={DB_ENV: "y.db"}) == "x.db"
    assert default_db(["app.py"], env={DB_ENV: "y.db"}) == "y.db"
    assert default_db(["app.py"], env={}) == "data/demo.db"


def test_screen_asks_for_a_reviewer_first(demo: Path) -> None:
    at = open_app()
    assert at.sidebar.text_input(key="db").value == str(demo)
    assert any("Sign in" in i.value for i in at.info)
    assert not [b for b in at.button if (b.key or "").startswith("decide_")]


def test_add_reviewer_from_the_sidebar_signs_in(demo: Path) -> None:
    at = open_app()
    at.sidebar.text_input(key="new_reviewer").input("dora").run()
    at.sidebar.button(key="add_reviewer").click().run()
    assert at.sidebar.selectbox(key="reviewer").value == "dora"
    with sqlite3.connect(demo) as con:
        assert con.execute("SELECT role FROM reviewers WHERE name = 'dora'").fetchone() == ("reviewer",)


def test_bad_project_path_is_an_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DB_ENV, str(tmp_path / "missing.db"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "no such project" in at.sidebar.error[0].value
    assert any("New project" in c.value for c in at.sidebar.caption)  # the dashboard's own way to create it
    assert not (tmp_path / "missing.db").exists()


# -- Screen -------------------------------------------------------------------------------------------
def test_screen_decides_as_the_signed_in_reviewer_then_undo(demo: Path) -> None:
    at = open_app("alice")
    first = shown_record(at)
    at.text_input(key=f"screen_reason_{first}").input("animal study").run()
    at.text_input(key=f"screen_note_{first}").input("rats only").run()
    decide_on_screen(at, "exclude")
    second = shown_record(at)
    assert second != first
    assert at.text_input(key=f"screen_reason_{second}").value == ""
    decide_on_screen(at, "include")
    third = shown_record(at)
    assert third not in (first, second)
    assert "**2** screened by you" in at.markdown[0].value
    assert decisions(demo) == [
        (first, "alice", "title_abstract", "exclude", "screen", "animal study", "rats only", None),
        (second, "alice", "title_abstract", "include", "screen", None, None, None),
    ]
    at.button(key="undo").click().run()
    assert shown_record(at) == second  # the undone record comes back to be decided again
    rows = decisions(demo)
    assert rows[-1][1:4] == ("alice", "title_abstract", "undo") and rows[-1][0] == second
    decide_on_screen(at, "maybe")
    assert decisions(demo)[-1][:4] == (second, "alice", "title_abstract", "maybe")
    assert shown_record(at) not in (first, second)


def test_two_tabs_lose_nothing_and_never_decide_a_record_twice(demo: Path) -> None:
    tab1, tab2 = open_app("alice"), open_app("alice")
    record = shown_record(tab1)
    assert shown_record(tab2) == record  # both tabs opened on the same best-ranked record
    decide_on_screen(tab1, "include")
    decide_on_screen(tab2, "exclude")  # clicked on a record the other tab has decided
    assert any("already decided" in w.value for w in tab2.warning)
    assert decisions(demo) == [(record, "alice", "title_abstract", "include", "screen", None, None, None)]
    assert record not in (shown_record(tab1), shown_record(tab2))
    decide_on_screen(tab2, "exclude")
    tab1.run()
    assert shown_record(tab1) not in [r[0] for r in decisions(demo)]
    assert len({r[0] for r in decisions(demo)}) == 2


def test_two_reviewers_in_single_mode_are_shown_different_records(demo: Path) -> None:
    alice, bob = open_app("alice"), open_app("bob")
    assert shown_record(alice) != shown_record(bob)  # the best record is on alice's screen: bob gets the next
    first = shown_record(alice)
    decide_on_screen(alice, "include")
    bob.run()
    carol = open_app("carol")
    assert len({shown_record(alice), shown_record(bob), shown_record(carol), first}) == 4


def test_a_click_that_loses_a_race_says_so_and_offers_to_change_the_decision(demo: Path) -> None:
    bob = open_app("bob")
    record = shown_record(bob)
    with open_store(demo) as store:  # alice decides it from the command line while bob reads it
        decide(store, record, "include", reviewer="alice")
    decide_on_screen(bob, "exclude")
    warning = bob.warning[0].value
    assert "decided a moment ago by alice (include)" in warning and "exclude was not recorded" in warning
    assert shown_record(bob) != record  # the next record is drawn
    assert [(r[0], r[1], r[3]) for r in decisions(demo)] == [(record, "alice", "include")]
    bob.button(key="screen_revise_button").click().run()  # "Change … to exclude anyway"
    rows = decisions(demo)
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (record, "alice", "include"),
        (record, "bob", "undo"),
        (record, "bob", "exclude"),
    ]
    assert rows[1][7] is not None  # the undo names alice's decision
    assert any("changed to exclude" in s.value for s in bob.success)


def test_progress_page_changes_a_decision_as_a_revision(demo: Path) -> None:
    at = open_app("alice")
    record = shown_record(at)
    decide_on_screen(at, "maybe")
    at.switch_page(f"{PAGES}/progress.py").run()
    at.number_input(key="details_record").set_value(record).run()
    at.radio(key="details_value").set_value("include").run()
    at.button(key="details_change").click().run()
    assert not at.exception, at.exception
    assert [(r[0], r[3]) for r in decisions(demo)] == [(record, "maybe"), (record, "undo"), (record, "include")]
    assert any(f"Record {record} changed to include" in s.value for s in at.success)


def test_dual_blind_mode_second_reviewer_gets_the_record_but_not_the_vote(demo: Path) -> None:
    with open_store(demo) as store:
        set_mode(store, "title_abstract", "dual", blind=True)
    alice = open_app("alice")
    record = shown_record(alice)
    decide_on_screen(alice, "include")
    assert shown_record(alice) != record
    bob = open_app("bob")
    assert shown_record(bob) == record  # it still needs a second vote
    assert not bob.dataframe, "blind mode must hide alice's vote from bob"
    decide_on_screen(bob, "exclude")
    assert [(r[0], r[1], r[3]) for r in decisions(demo)] == [(record, "alice", "include"), (record, "bob", "exclude")]
    bob.switch_page(f"{PAGES}/conflicts.py").run()
    assert bob.dataframe[0].value["record"].tolist() == [record]


def test_record_text_is_shown_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hostile.db"
    with init_project(path, name="Hostile", query="ketamine") as store:
        import_file(store, FIXTURES / "hostile.csv", source_name="x")
        add_reviewer(store, "alice")
        store.set_setting("keywords", {"include": ["ketamine", "chronic pain", "script"], "exclude": ["rats"]})
    monkeypatch.setenv(DB_ENV, str(path))
    at = open_app("alice")
    body = at.html[0].value
    assert "<script>" not in body and "<img" not in body and "<b>Doe" not in body and "<i>Pain" not in body
    assert '&lt;<mark class="kw-include">script</mark>&gt;alert(&#x27;x&#x27;)&lt;/' in body
    assert "**bold** [link](javascript:alert(2))" in body  # markdown is not interpreted (st.html, not markdown)
    assert '<mark class="kw-include">ketamine</mark>' in body
    assert '<mark class="kw-exclude">rats</mark>' in body
    assert "&amp; mice" in body


def test_highlight_never_matches_inside_an_entity() -> None:
    out = highlight("Tom & Jerry <amp> lt", {"include": ["amp", "lt"], "exclude": []})
    assert out == 'Tom &amp; Jerry &lt;<mark class="kw-include">amp</mark>&gt; <mark class="kw-include">lt</mark>'
    card = record_html({"title": "x", "doi": '10.1/"><script>', "pmid": "123 or 1=1"}, {})
    assert "<script>" not in card and "pubmed" not in card.lower()


def test_keywords_saved_on_setup_are_marked_on_the_screen_page(demo: Path) -> None:
    at = open_app("alice")
    assert not at.text_area  # the Screen page draws no editor: keywords are the project's, set on Setup
    with open_store(demo) as store:
        title = store.get_record(shown_record(at)).title
    word = max((w for w in title.split() if w.isalpha()), key=len).lower()  # a word of the title shown
    at.switch_page(f"{PAGES}/setup.py").run()
    at.text_area(key="setup_include").input(f"{word}\nfibromyalgia")  # form widgets: no run until submit
    at.text_area(key="setup_exclude").input("mice, rats")
    at.button(key="FormSubmitter:setup_form-Save").click().run()
    assert not at.exception, at.exception
    with open_store(demo) as store:
        assert store.get_setting("keywords") == {"include": [word, "fibromyalgia"], "exclude": ["mice", "rats"]}
    at.switch_page(f"{PAGES}/screen.py").run()
    card = next(h.value for h in at.html if "record-title" in h.value)
    assert re.search(f'<mark class="kw-include">{word}</mark>', card, re.I), card[:300]


# -- other pages --------------------------------------------------------------------------------------
def test_progress_page_says_what_ranks_before_the_first_include(demo: Path) -> None:
    at = open_app("alice")
    at.switch_page(f"{PAGES}/progress.py").run()
    assert not at.exception
    model = dict(zip(at.dataframe[-1].value["setting"], at.dataframe[-1].value["value"], strict=True))
    assert model["includes learned"] == "0"
    assert model["ranking by"] == (
        "similarity to the project's query, criteria and keywords, with the inclusion prior (cold start)"
    )


def test_progress_page_shows_counts_curve_and_model(demo: Path) -> None:
    at = open_app("alice")
    for value in ("include", "exclude", "include"):
        decide_on_screen(at, value)
    at.switch_page(f"{PAGES}/progress.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    with open_store(demo) as store:
        counts = store.counts()
    assert metrics["Records left (title/abstract)"] == str(counts.unique - 3)
    unique_help = next(m.proto.help for m in at.metric if m.label == "Unique records")  # says what it counts
    assert f"{counts.records:,} imported, {counts.records - counts.unique:,} merged as duplicates" in unique_help
    assert any("removed before screening" in c.value for c in at.caption)
    assert metrics["Included"] == "2" and metrics["Excluded"] == "1"
    model = dict(zip(at.dataframe[-1].value["setting"], at.dataframe[-1].value["value"], strict=True))
    assert model["includes learned"] == "2" and model["excludes learned"] == "1"
    assert model["ranking by"] == "classifier trained on the decisions"
    assert model["features"] == "TF-IDF words and character 4-grams"  # embeddings are opt-in
    assert any("2 relevant found in 3 screened" in c.value for c in at.caption)


def _model_table(at: AppTest) -> dict[str, str]:
    return dict(zip(at.dataframe[-1].value["setting"], at.dataframe[-1].value["value"], strict=True))


def test_progress_page_turns_sentence_embeddings_on_and_off(small: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="embeddings need requirements-embeddings.txt")
    from screening.ranking.project import EMBEDDINGS_KEY, EMBEDDINGS_SETTING
    from screening.schema import CacheEntry

    at = open_app("alice", "progress")
    assert _model_table(at)["features"] == "TF-IDF words and character 4-grams"
    at.button(key="embeddings_toggle").click().run()
    assert not at.exception, at.exception
    assert _model_table(at)["features"].startswith("TF-IDF + sentence embeddings")
    assert at.button(key="embeddings_toggle").label == "Rank without sentence embeddings"
    with open_store(small) as store:
        assert store.get_setting(EMBEDDINGS_SETTING) is True
        with store.read() as session:
            assert session.get(CacheEntry, EMBEDDINGS_KEY) is not None  # the vectors are kept in the project
    at.button(key="embeddings_toggle").click().run()
    assert _model_table(at)["features"] == "TF-IDF words and character 4-grams"
    with open_store(small) as store:
        assert store.get_setting(EMBEDDINGS_SETTING) is False


def test_a_project_set_to_embeddings_opens_where_they_are_not_installed(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from screening.ranking.project import EMBEDDINGS_SETTING

    with open_store(small) as store:
        store.set_setting(EMBEDDINGS_SETTING, True)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if never installed
    at = open_app("alice", "screen")
    assert any("requirements-embeddings.txt" in e.value for e in at.error)
    at.button(key="embeddings_off").click().run()
    assert not at.exception, at.exception
    assert shown_record(at) > 0  # screening goes on with TF-IDF
    with open_store(small) as store:
        assert store.get_setting(EMBEDDINGS_SETTING) is False


def test_conflicts_page_resolution_by_a_third_reviewer(demo: Path) -> None:
    with open_store(demo) as store:
        set_mode(store, "title_abstract", "dual")
        decide(store, 5, "include", reviewer="alice")
        decide(store, 5, "exclude", reviewer="bob")
    at = open_app("carol", "conflicts")
    assert at.dataframe[0].value["record"].tolist() == [5]
    at.radio(key="resolve_value").set_value("include")
    at.button(key="FormSubmitter:resolve_form-Resolve as carol").click().run()
    assert decisions(demo)[-1] == (5, "carol", "title_abstract", "include", "resolution", None, None, None)
    assert any("No conflicts" in s.value for s in at.success)


def test_fulltext_page_retrieval_then_exclusion_with_reason(small: Path) -> None:
    with open_store(small) as store:
        decide(store, 1, "include", reviewer="alice")
    at = open_app("bob", "fulltext")
    assert at.dataframe[0].value["record"].tolist() == [1]
    at.button(key="FormSubmitter:retrieval_form-Save retrieval").click().run()
    at.radio(key="ft_value").set_value("exclude")
    at.selectbox(key="ft_reason").select("Wrong study design")
    at.button(key="FormSubmitter:eligibility_form-Save decision").click().run()
    assert decisions(small)[-2:] == [
        (1, "bob", "full_text", "retrieved", "screen", None, None, None),
        (1, "bob", "full_text", "exclude", "screen", "Wrong study design", None, None),
    ]


def test_prisma_page_draws_a_provisional_diagram_while_screening_is_unfinished(demo: Path) -> None:
    with open_store(demo) as store:
        decide(store, 1, "exclude", reviewer="alice")
    at = open_app("alice", "prisma")
    assert not at.error
    assert "Provisional" in at.warning[0].value and "awaiting screening" in at.warning[0].value
    assert at.image[0].captions == ["PRISMA 2020 flow diagram (provisional)"]
    c = json.loads(at.json[0].value)
    assert c["provisional"] is True and c["records_screened"] == c["records_excluded"] == 1
    identified = c["database_results"] + c["register_results"]
    removed = c["duplicates"] + c["excluded_automatic"] + c["excluded_other"]
    assert c["records_screened"] + c["awaiting"]["screening"] == identified - removed  # every record accounted for


def _screen_everything(store: Store) -> None:
    for rid in range(1, 9):
        decide(store, rid, "include" if rid <= 3 else "exclude", reviewer="alice")
    for rid in (1, 2, 3):
        set_retrieval(store, rid, rid != 3, reviewer="alice")
    decide(store, 1, "include", reviewer="alice", stage="full_text")
    decide(store, 2, "exclude", reviewer="alice", stage="full_text", reason="Wrong population")


def test_prisma_page_draws_and_offers_four_downloads(small: Path) -> None:
    with open_store(small) as store:
        _screen_everything(store)
    at = open_app("alice", "prisma")
    assert not at.error
    assert [b.label for b in at.download_button] == ["CSV (PRISMA2020 template)", "JSON", "SVG", "PNG"]
    counts = json.loads(at.json[0].value)
    assert (counts["records_screened"], counts["records_excluded"]) == (8, 5)
    assert counts["dbr"]["notretrieved_reports"] == 1 and counts["new_studies"] == 1
    assert at.image[0].captions == ["PRISMA 2020 flow diagram"]


def test_export_page_offers_the_selected_records(small: Path) -> None:
    with open_store(small) as store:
        _screen_everything(store)
    at = open_app("alice", "export")
    at.selectbox(key="export_what").select("included").run()
    at.selectbox(key="export_format").select("ris").run()
    # record 1 was included at full text; record 3 (not retrieved) stays included at the last stage it reached
    assert [m.value for m in at.markdown if m.value.endswith(" records.")] == ["2 records."]
    assert at.download_button(key="export_download").label == "Download included records (ris)"


def test_import_page_adds_records_and_shows_file_errors(small: Path) -> None:
    at = open_app("alice", "search")
    at.file_uploader(key="import_file").upload("embase.ris", (FIXTURES / "embase.ris").read_bytes())
    at.text_input(key="import_source").input("Embase")
    at.button(key="FormSubmitter:import_form-Import").click().run()
    assert not at.error, at.error
    assert any("embase.ris" in s.value and "imported as 'Embase'" in s.value for s in at.success)
    with sqlite3.connect(small) as con:
        assert con.execute("SELECT file_name FROM sources WHERE name = 'Embase'").fetchone() == ("embase.ris",)
        before = con.execute("SELECT count(*) FROM records").fetchone()[0]
    assert before > 8
    at.file_uploader(key="import_file").upload("no_title.csv", (FIXTURES / "no_title.csv").read_bytes())
    at.text_input(key="import_source").input("Broken")
    at.button(key="FormSubmitter:import_form-Import").click().run()
    error = at.error[0].value
    assert "no_title.csv" in error and "'title'" in error and "line 1" in error
    assert "/tmp" not in error and "Temp" not in error  # the reviewer's own file name, not the server's copy
    assert at.file_uploader(key="import_file").value is not None  # the form keeps the file to try again
    with sqlite3.connect(small) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == before
        assert con.execute("SELECT count(*) FROM sources WHERE name = 'Broken'").fetchone()[0] == 0
    at.file_uploader(key="import_file").upload("embase.ris", (FIXTURES / "embase.ris").read_bytes())
    at.text_input(key="import_source").input("Embase")
    at.button(key="FormSubmitter:import_form-Import").click().run()
    assert "embase.ris: this content was imported already, as source" in at.error[0].value  # not twice
    at.checkbox(key="import_again").check()
    at.button(key="FormSubmitter:import_form-Import").click().run()
    assert not at.error and any("embase.ris" in s.value for s in at.success)


def test_search_page_runs_a_pubmed_search_with_progress_and_logs_it(small: Path) -> None:
    with EutilsServer(load_corpus()[:30]) as server:
        at = open_app("alice", "search")
        at.text_area(key="search_query").input("ketamine AND chronic pain")
        at.text_input(key="search_email").input("reviewer@example.org")
        at.text_input(key="search_eutils_url").input(server.url)
        at.button(key="FormSubmitter:search_form-Search").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.get("progress"), "the search shows a progress bar"
    assert any("PubMed reported 30, retrieved 30" in s.value for s in at.success)
    log = at.dataframe[0].value
    assert log["query"].tolist() == ["ketamine AND chronic pain"] and log["count_retrieved"].tolist() == [30]
    with sqlite3.connect(small) as con:
        linked = (
            "SELECT count(*) FROM record_sources rs JOIN sources s ON s.id = rs.source_id WHERE s.method = 'search'"
        )
        assert con.execute(linked).fetchone()[0] == 30


def test_project_picker_creates_a_new_project(demo: Path, tmp_path: Path) -> None:
    at = open_app()
    new = tmp_path / "new review.db"
    at.sidebar.text_input(key="new_project_db").input(str(new)).run()
    at.sidebar.text_input(key="new_project_name").input("Ketamine for CRPS").run()
    at.sidebar.button(key="create_project").click().run()
    assert not at.exception and not at.sidebar.error
    assert at.sidebar.text_input(key="db").value == str(new)
    assert any(c.value == "Ketamine for CRPS" for c in at.sidebar.caption)
    with open_store(new) as store:
        assert store.get_setting("name") == "Ketamine for CRPS"


def test_empty_project_pages_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.db"
    with init_project(path, name="Empty", query="ketamine") as store:
        add_reviewer(store, "alice")
    monkeypatch.setenv(DB_ENV, str(path))
    at = open_app("alice")
    assert any("Nothing to rank yet" in i.value for i in at.info)
    for page in ("progress", "conflicts", "fulltext", "prisma", "export", "search"):
        at.switch_page(f"{PAGES}/{page}.py").run()
        assert not at.exception, (page, at.exception)


def test_without_db_the_bundled_demo_is_built_and_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DB_ENV, raising=False)
    at = open_app()
    assert at.sidebar.text_input(key="db").value == "data/demo.db"
    assert any(c.value == "Psychedelics for chronic pain (demo)" for c in at.sidebar.caption)
    assert (tmp_path / "data" / "demo.db").is_file()


def test_record_details_respect_blind_mode(demo: Path) -> None:
    with open_store(demo) as store:
        set_mode(store, "title_abstract", "dual", blind=True)
        decide(store, 7, "include", reviewer="alice", note="alice's note")
    bob = open_app("bob", "progress")
    bob.number_input(key="details_record").set_value(7).run()
    assert not bob.exception
    assert "awaiting" in bob.markdown[-1].value
    assert not [df for df in bob.dataframe if "note" in df.value.columns]  # alice's vote stays hidden
    alice = open_app("alice", "progress")
    alice.number_input(key="details_record").set_value(7).run()
    notes = [df.value for df in alice.dataframe if "note" in df.value.columns]
    assert notes and notes[0]["note"].tolist() == ["alice's note"]


def test_shortcut_bindings_are_checked_and_skip_stale_buttons() -> None:
    script = shortcut_script({"i": "decide_include_", "u": "undo"})
    assert '{"i": "decide_include_", "u": "undo"}' in script
    assert "data-stale" in script and "INPUT" in script and "TEXTAREA" in script
    with pytest.raises(ConfigError, match="'Ctrl'"):
        shortcut_script({"Ctrl": "undo"})
    with pytest.raises(ConfigError, match="widget key"):
        shortcut_script({"x": "a'] button, body ['"})
    assert '"1": "screen_pick_#0"' in shortcut_script({"1": "screen_pick_#0"})  # the first option of a pick list
    with pytest.raises(ConfigError, match="#N"):
        shortcut_script({"1": "screen_pick_#first"})
