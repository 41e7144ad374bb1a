"""The project's topic settings (``screening.setup``) and ``screening configure``, on real SQLite projects."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screening.cli import app
from screening.errors import ConfigError
from screening.ranking.project import topic_text
from screening.setup import ProjectSetup, clean_keyword_list, read_setup, save_setup
from screening.store import init_project, open_store

QUERY = '(ketamine[tiab] OR esketamine[tiab]) AND "chronic pain"[tiab]'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "review.db"
    init_project(path, name="Ketamine for pain").close()
    return path


def setting_events(db: Path) -> list[tuple[str | None, str]]:
    """(actor, key) of every setting change after the project was created, in order."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT actor, json_extract(detail, '$.key') FROM audit_log "
            "WHERE action = 'setting' AND id > (SELECT id FROM audit_log WHERE action = 'init') ORDER BY id"
        )
        return rows.fetchall()


def test_a_new_project_reads_as_its_name_and_nothing_else(project: Path) -> None:
    with open_store(project) as store:
        assert read_setup(store) == ProjectSetup(name="Ketamine for pain")


def test_save_then_read_and_the_cold_start_sees_it(project: Path) -> None:
    setup = ProjectSetup(
        name="Ketamine for chronic pain",
        query=QUERY,
        criteria="Adults with chronic pain given ketamine.",
        include_keywords=("ketamine", "chronic pain"),
        exclude_keywords=("rats", "review"),
    )
    with open_store(project) as store:
        assert save_setup(store, setup, actor="alice") == ("name", "query", "criteria", "keywords")
        assert read_setup(store) == setup
        assert store.get_setting("keywords") == {"include": ["ketamine", "chronic pain"], "exclude": ["rats", "review"]}
        assert topic_text(store) == [QUERY, "Adults with chronic pain given ketamine.", "ketamine chronic pain"]
    assert setting_events(project) == [
        ("alice", "name"),
        ("alice", "query"),
        ("alice", "criteria"),
        ("alice", "keywords"),
    ]


def test_only_what_changed_is_written_and_audited(project: Path) -> None:
    with open_store(project) as store:
        save_setup(store, ProjectSetup(name="Ketamine for pain", query="ketamine"), actor="alice")
        before = read_setup(store)
        assert save_setup(store, before, actor="bob") == ()
        assert save_setup(store, ProjectSetup(name=" Ketamine  for pain ", query=" ketamine \n"), actor="bob") == ()
        changed = ProjectSetup(name="Ketamine for pain", query="ketamine", criteria="Adults only")
        assert save_setup(store, changed, actor="bob") == ("criteria",)
    assert setting_events(project) == [("alice", "query"), ("bob", "criteria")]


def test_two_editors_keep_each_others_changes_and_a_clash_is_refused(project: Path) -> None:
    """Two owners with the Setup form open: each saves only what they edited; editing one setting both is refused."""
    from dataclasses import replace

    from screening.errors import EditConflict

    with open_store(project) as store:
        save_setup(store, ProjectSetup(name="Ketamine for pain", query="ketamine"), actor="alice")
    with open_store(project) as alice, open_store(project) as bob:
        alice_form, bob_form = read_setup(alice), read_setup(bob)  # both forms drawn from the same setup
        assert save_setup(bob, replace(bob_form, query=QUERY), base=bob_form, actor="bob") == ("query",)
        # alice edits the criteria on her older form: bob's query stays
        saved = save_setup(alice, replace(alice_form, criteria="Adults only"), base=alice_form, actor="alice")
        assert saved == ("criteria",)
        assert read_setup(alice) == replace(alice_form, query=QUERY, criteria="Adults only")
        # alice now edits the query bob changed after her form was drawn: refused, nothing written
        with pytest.raises(EditConflict, match="query changed since this form was drawn"):
            save_setup(alice, replace(alice_form, query="ketamine pain", name="Other"), base=alice_form, actor="alice")
        assert read_setup(alice) == replace(alice_form, query=QUERY, criteria="Adults only")
        # the same change as the other editor's is no clash
        assert save_setup(alice, replace(alice_form, query=QUERY), base=alice_form, actor="alice") == ()
    assert setting_events(project) == [("alice", "query"), ("bob", "query"), ("alice", "criteria")]


def test_keywords_are_stripped_and_deduplicated_ignoring_case() -> None:
    assert clean_keyword_list([" Ketamine ", "ketamine", "", "chronic   pain", "KETAMINE", "Chronic pain"]) == (
        "Ketamine",
        "chronic pain",
    )
    assert clean_keyword_list("rats, mice,,Rats\nin vitro\n") == ("rats", "mice", "in vitro")
    assert clean_keyword_list(None) == ()


def test_an_empty_name_or_a_keyword_on_both_lists_is_refused_and_nothing_is_written(project: Path) -> None:
    with open_store(project) as store:
        with pytest.raises(ConfigError, match="name: must not be empty"):
            save_setup(store, ProjectSetup(name="  ", query="ketamine"))
        with pytest.raises(ConfigError, match="'ketamine' cannot be both"):
            save_setup(store, ProjectSetup(name="x", include_keywords=("Ketamine",), exclude_keywords=("ketamine",)))
        assert read_setup(store) == ProjectSetup(name="Ketamine for pain")
    assert setting_events(project) == []


def test_odd_stored_keywords_read_cleanly(project: Path) -> None:
    with open_store(project) as store:
        store.set_setting("keywords", {"include": "ketamine, Ketamine,pain", "exclude": None})
        setup = read_setup(store)
    assert setup.include_keywords == ("ketamine", "pain")
    assert setup.exclude_keywords == ()


# -- screening configure -------------------------------------------------------------------------------
def configure(project: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["configure", "--db", str(project), *args])


def test_configure_sets_what_is_given_and_keeps_the_rest(project: Path) -> None:
    result = configure(
        project,
        *("--query", QUERY, "--include-keyword", "ketamine", "--include-keyword", " Ketamine "),
        *("--exclude-keyword", "rats", "--reviewer", "alice"),
    )
    assert result.exit_code == 0, result.output
    assert "Saved query, keywords" in result.output
    result = configure(project, "--criteria", "Adults only", "--show")
    assert result.exit_code == 0, result.output
    assert "Saved criteria" in result.output
    assert "ketamine[tiab]" in result.output  # printed as typed, not read as markup
    with open_store(project) as store:
        assert read_setup(store) == ProjectSetup(
            name="Ketamine for pain",
            query=QUERY,
            criteria="Adults only",
            include_keywords=("ketamine",),
            exclude_keywords=("rats",),
        )
    assert setting_events(project) == [("alice", "query"), ("alice", "keywords"), (None, "criteria")]


def test_configure_without_options_shows_and_writes_nothing(project: Path) -> None:
    result = configure(project)
    assert result.exit_code == 0, result.output
    assert "Ketamine for pain" in result.output
    assert "Saved" not in result.output
    assert configure(project, "--name", "Ketamine for pain").output.strip() == "Nothing changed"
    assert setting_events(project) == []


def test_configure_empties_a_keyword_list_with_an_empty_keyword(project: Path) -> None:
    configure(project, "--include-keyword", "ketamine", "--exclude-keyword", "rats")
    result = configure(project, "--include-keyword", "")
    assert result.exit_code == 0, result.output
    with open_store(project) as store:
        setup = read_setup(store)
    assert (setup.include_keywords, setup.exclude_keywords) == ((), ("rats",))


def test_configure_errors_are_one_line_and_exit_1(project: Path) -> None:
    result = configure(project, "--name", " ")
    assert result.exit_code == 1
    assert "Error: name: must not be empty" in result.output
    assert "Traceback" not in result.output
    with open_store(project) as store:
        assert read_setup(store).name == "Ketamine for pain"
