"""PRISMA counts on small real projects: identities that fail, the other-methods column, the template CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from screening import decisions as d
from screening.errors import ConfigError
from screening.ingest import add_citations, new_source
from screening.prisma import (
    PrismaIdentityError,
    check_identities,
    default_template,
    prisma_counts,
    to_json,
    to_template_csv,
)
from screening.prisma_diagram import to_svg, write_diagram
from screening.reviewers import add_reason, add_reviewer
from screening.sources import Citation
from screening.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "prisma" / "estrogens_16.csv"
SHARED_TEMPLATE = Path(__file__).resolve().parents[2] / "shared" / "prisma" / "PRISMA2020_template.csv"


def _rows() -> list[dict[str, str]]:
    with FIXTURE.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _add(store: Store, rows: list[dict[str, str]], *, name: str, kind: str = "database") -> list[int]:
    with store.begin() as s:
        source = new_source(s, name=name, kind=kind)
        cits = [Citation(title=r["title"], abstract=r["abstract"], pmid=r["pmid"] or None) for r in rows]
        return add_citations(s, source, cits).record_ids


@pytest.fixture
def small(store: Store) -> tuple[Store, list[int]]:
    ids = _add(store, _rows()[:8], name="PubMed")
    add_reviewer(store, "alice")
    add_reason(store, "Wrong population")
    return store, ids


def test_unscreened_records_make_the_identities_fail(small) -> None:
    store, ids = small
    d.decide(store, ids[0], "include", reviewer="alice")
    d.decide(store, ids[1], "maybe", reviewer="alice")
    counts = prisma_counts(store)
    with pytest.raises(PrismaIdentityError) as info:
        check_identities(counts)
    failures = info.value.failures
    assert failures[0] == (
        "records screened: 1 != identified 8 - duplicates 0 - automation 0 - other 0 = 8 "
        "(7 records still undecided at title/abstract: maybe, conflict or unscreened)"
    )
    assert failures[1] == (
        "reports assessed: 0 != sought 1 - not retrieved 0 = 1 (1 reports sought without a retrieval decision)"
    )
    assert len(failures) == 2


def test_numbers_that_do_not_add_up_are_never_drawn(small, tmp_path: Path) -> None:
    store, ids = small
    for rid in ids:
        d.decide(store, rid, "include" if rid == ids[0] else "exclude", reviewer="alice")
    d.set_retrieval(store, ids[0], True, reviewer="alice")  # retrieved, but no full-text decision yet
    counts = prisma_counts(store)
    with pytest.raises(PrismaIdentityError, match=r"reports included: 0 != assessed 1 - excluded 0 = 1 \(1 reports"):
        to_svg(counts)
    with pytest.raises(PrismaIdentityError):
        to_template_csv(counts)
    with pytest.raises(PrismaIdentityError):
        write_diagram(counts, tmp_path / "prisma.png")
    assert not (tmp_path / "prisma.png").exists()
    d.decide(store, ids[0], "exclude", reviewer="alice", stage="full_text", reason="Wrong population")
    path = write_diagram(prisma_counts(store), tmp_path / "prisma.svg")
    assert "Wrong population (n = 1)" in path.read_text(encoding="utf-8")


def test_records_from_other_methods_have_their_own_column(small) -> None:
    store, ids = small
    other = _add(store, _rows()[8:11], name="Reference lists", kind="citation")
    for rid in ids:
        d.decide(store, rid, "exclude", reviewer="alice")
    for rid in other:
        d.decide(store, rid, "include", reviewer="alice")
    d.set_retrieval(store, other[0], False, reviewer="alice")
    for rid in other[1:]:
        d.set_retrieval(store, rid, True, reviewer="alice")
    d.decide(store, other[1], "include", reviewer="alice", stage="full_text")
    d.decide(store, other[2], "exclude", reviewer="alice", stage="full_text", reason="Wrong population")
    counts = prisma_counts(store)
    check_identities(counts)
    assert (counts.identified, counts.citations, counts.records_screened) == (8, 3, 8)
    o = counts.other
    assert (o.sought, o.not_retrieved, o.assessed, o.excluded, o.included) == (3, 1, 2, [("Wrong population", 1)], 1)
    assert counts.new_studies == 1
    svg = to_svg(counts)
    assert 'id="box-othstud"' in svg and "Citation searching (n = 3)" in svg
    values = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(to_template_csv(counts)))}
    assert (values["citations_results"], values["other_sought_reports"], values["other_excluded"]) == (
        "3",
        "3",
        "Wrong population, 1",
    )


def test_the_csv_of_an_empty_project_is_the_template_with_zeros(store: Store) -> None:
    counts = prisma_counts(store)
    check_identities(counts)
    text = to_template_csv(counts)
    template = default_template().read_text(encoding="utf-8")
    assert text.splitlines()[0] == template.splitlines()[0]
    got, want = list(csv.reader(io.StringIO(text))), list(csv.reader(io.StringIO(template)))
    assert [row[:-1] for row in got] == [row[:-1] for row in want]
    n = {row[0]: row[-1] for row in got[1:]}
    assert n["database_specific_results"] == "0" and n["dbr_excluded"] == "0"  # read as no entries


def test_the_packaged_template_is_the_shared_one() -> None:
    if not SHARED_TEMPLATE.is_file():
        pytest.skip(f"{SHARED_TEMPLATE} is not present")
    assert default_template().read_bytes() == SHARED_TEMPLATE.read_bytes()


def test_unchanged_rows_keep_the_templates_exact_text(store: Store) -> None:
    """Quoting, NA cells, the empty node cell and line endings survive byte for byte."""
    text = to_template_csv(prisma_counts(store))
    template = default_template().read_text(encoding="utf-8")
    for got, want in zip(text.splitlines(), template.splitlines(), strict=True):
        if want.startswith(("NA,", "identification,", "screening,", "included,")):
            assert got == want


def test_names_are_made_safe_for_the_list_form(store: Store) -> None:
    ids = _add(store, _rows()[:2], name="Embase; via Ovid, 1974-")
    add_reviewer(store, "alice")
    for rid in ids:
        d.decide(store, rid, "exclude", reviewer="alice")
    values = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(to_template_csv(prisma_counts(store))))}
    assert values["database_specific_results"] == "Embase - via Ovid - 1974-, 2"


def test_a_bad_template_is_a_config_error(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("key,value\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1: expected columns data, node, box"):
        to_template_csv(prisma_counts(store), bad)
    with pytest.raises(ConfigError, match="cannot read"):
        to_template_csv(prisma_counts(store), tmp_path / "missing.csv")


def test_json_has_the_pending_work(small) -> None:
    store, ids = small
    d.decide(store, ids[0], "include", reviewer="alice")
    data = to_json(prisma_counts(store))
    assert data["screening_pending"] == 7 and data["dbr"]["retrieval_pending"] == 1
    assert data["database_specific_results"] == [{"name": "PubMed", "n": 8}]


def test_a_provisional_flow_counts_the_work_awaited_and_says_so_everywhere(small, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from screening.cli import app
    from screening.prisma import checked_counts

    store, ids = small
    d.decide(store, ids[0], "include", reviewer="alice")
    d.decide(store, ids[1], "exclude", reviewer="alice")
    db = str(store.path)
    final = CliRunner().invoke(app, ["prisma", "--db", db, "--out", str(tmp_path / "final.svg")])
    assert final.exit_code == 1 and not (tmp_path / "final.svg").exists()  # the final diagram still refuses
    for name in ("flow.svg", "flow.csv", "flow.json"):
        done = CliRunner().invoke(app, ["prisma", "--db", db, "--provisional", "--out", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
    svg = (tmp_path / "flow.svg").read_text(encoding="utf-8")
    assert "PROVISIONAL: 6 awaiting screening" in svg and "PROVISIONAL: 1 awaiting a retrieval decision" in svg
    assert "<title>PRISMA 2020 flow diagram (provisional)</title>" in svg
    rows = {r["data"]: r for r in csv.DictReader(io.StringIO((tmp_path / "flow.csv").read_text(encoding="utf-8")))}
    screened = rows["records_screened"]
    assert screened["n"] == "2" and "PROVISIONAL: 6 awaiting screening" in screened["boxtext"]
    flow = json.loads((tmp_path / "flow.json").read_text(encoding="utf-8"))
    assert flow["provisional"] is True and flow["awaiting"] == {"screening": 6, "retrieval": 1, "full_text": 0}
    for rid in ids[2:]:
        d.decide(store, rid, "exclude", reviewer="alice")
    d.set_retrieval(store, ids[0], False, reviewer="alice")
    assert checked_counts(store, provisional=True).provisional is False  # a finished review is never marked
