"""Ending title/abstract screening early: a stop is refused until the rule says so, writes an
automation exclude for every unscreened record, makes PRISMA 2020 add up with those counted as
"marked as ineligible by automation tools", names its rule (FORCED when it was) in every
output, is reopened by records imported later for those records only, and can be undone.

Real records and labels: the Antihistamines drug class review (Cohen 2006), 310 records,
16 included, screened includes first as a good ranking would put them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from screening import decisions as d
from screening.cli import app
from screening.errors import DecisionError
from screening.ingest import add_citations, new_source
from screening.prisma import check_identities, prisma_counts, to_json, to_template_csv
from screening.prisma_diagram import to_svg
from screening.progress import records_left
from screening.ranking.project import ProjectRanker
from screening.reviewers import add_reason, add_reviewer, set_mode
from screening.schema import AuditEvent, Decision, Record, Stop
from screening.snapshot import read_stage
from screening.sources import Citation
from screening.stopping import DEFAULT_RULE, first_stop, make_rule
from screening.stops import (
    check_verdict,
    save_stop_settings,
    stage_evidence,
    stop_stage,
    stops,
    undo_stop,
    unscreened_groups,
)
from screening.store import Store, init_project, open_store

DATA = Path(__file__).parent / "fixtures" / "ranking" / "cohen2006_Antihistamines.csv.gz"
TARGET = 0.9  # on this order the default rule certifies 90% recall after about 100 of 310 records (buscar: 244)
RULE = DEFAULT_RULE


@dataclass
class Review:
    store: Store
    ids: list[int]
    labels: dict[int, int]

    @property
    def order(self) -> list[int]:
        """Includes first, then excludes, each in file order: a ranking that found every include early."""
        return [i for i in self.ids if self.labels[i]] + [i for i in self.ids if not self.labels[i]]

    def screen(self, n: int, reviewer: str = "alice") -> list[int]:
        done = self.order[:n]
        for rid in done:
            d.decide(self.store, rid, "include" if self.labels[rid] else "exclude", reviewer=reviewer)
        return done

    def screen_until_the_rule_says_stop(self) -> int:
        """Screen in order up to where the rule first says stop along it; checked on the project itself."""
        n = first_stop(make_rule(target=TARGET), [self.labels[r] for r in self.order], len(self.ids))
        assert n is not None
        self.screen(n - 1)
        assert not check_verdict(self.store, target=TARGET)[1].stop
        d.decide(
            self.store, self.order[n - 1], "include" if self.labels[self.order[n - 1]] else "exclude", reviewer="alice"
        )
        assert check_verdict(self.store, target=TARGET)[1].stop
        return n

    def finish_full_text(self) -> None:
        """Retrieve and assess every report sought, so that PRISMA can add up."""
        add_reason(self.store, "Wrong study design")
        for rid in self.ids:
            if d.record_status(self.store, rid).sought:
                d.set_retrieval(self.store, rid, True, reviewer="alice")
                d.decide(self.store, rid, "include", reviewer="alice", stage="full_text")


def _rows() -> list[dict[str, str]]:
    with gzip.open(DATA, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _import(store: Store, rows: list[dict[str, str]], name: str = "PubMed") -> list[int]:
    with store.begin() as s:
        citations = [Citation(title=r["title"], abstract=r["abstract"], source_record_id=r["record_id"]) for r in rows]
        return add_citations(s, new_source(s, name=name), citations).record_ids


def _review(url: str | Path, rows: list[dict[str, str]] | None = None) -> Review:
    store = init_project(url, name="antihistamines")
    rows = rows if rows is not None else _rows()
    ids = _import(store, rows)
    add_reviewer(store, "alice")
    return Review(store, ids, {rid: int(r["label_included"]) for rid, r in zip(ids, rows, strict=True)})


@pytest.fixture
def review(tmp_path: Path) -> Review:
    return _review(tmp_path / "review.db")


def _count(store: Store, model: type) -> int:
    with store.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_the_evidence_is_the_screening_order_and_the_pool(review: Review) -> None:
    done = review.screen(40)
    with review.store.read() as s:
        evidence = stage_evidence(s)
    assert evidence.labels.tolist() == [review.labels[r] for r in done]
    assert evidence.pool == 310 and evidence.unscreened == 270 and evidence.stopped == 0
    with review.store.read() as s:
        assert unscreened_groups(s, read_stage(s, "title_abstract")) == sorted(review.order[40:])
    _, verdict = check_verdict(review.store, target=TARGET)
    assert verdict == make_rule(target=TARGET).verdict(evidence.labels, 310)


def test_retracted_and_withdrawn_records_are_not_in_the_pool_nor_excluded_by_a_stop(review: Review) -> None:
    review.screen(40)
    screened, unscreened = review.order[0], review.order[100]
    with review.store.begin() as s:  # as a PubMed update would mark them
        s.execute(update(Record).where(Record.id == screened).values(retracted=True))
        s.execute(update(Record).where(Record.id == unscreened).values(deleted_from_source=True))
    with review.store.read() as s:
        evidence = stage_evidence(s)
        assert unscreened not in unscreened_groups(s, read_stage(s, "title_abstract"))
    assert evidence.pool == 308 and evidence.screened == 39 and evidence.unscreened == 269
    result = stop_stage(review.store, reviewer="alice", target=TARGET, force=True, note="test")
    assert result.stop.records == 269
    counts = prisma_counts(review.store)
    assert counts.excluded_other == 2 and counts.excluded_automatic == 269 and counts.records_screened == 39


def test_a_stop_is_refused_with_the_rules_numbers_until_it_says_stop(review: Review) -> None:
    review.screen(60)
    before = (_count(review.store, Decision), _count(review.store, Stop), _count(review.store, AuditEvent))
    with pytest.raises(DecisionError, match=r"not stopped: not yet recall ≥ 90% .* p = .*--force --note"):
        stop_stage(review.store, reviewer="alice", target=TARGET)
    with pytest.raises(DecisionError, match="--force needs --note"):
        stop_stage(review.store, reviewer="alice", target=TARGET, force=True)
    after = (_count(review.store, Decision), _count(review.store, Stop), _count(review.store, AuditEvent))
    assert after == before


def test_a_stopped_review_adds_up_in_prisma_with_the_rule_named(review: Review) -> None:
    screened = review.screen_until_the_rule_says_stop()
    assert 16 < screened < 310
    result = stop_stage(review.store, reviewer="alice", target=TARGET)
    assert result.verdict.stop and not result.stop.forced and result.stop.records == 310 - screened
    assert records_left(review.store) == 0

    review.finish_full_text()
    counts = prisma_counts(review.store)
    check_identities(counts)
    assert counts.excluded_automatic == 310 - screened
    assert counts.records_screened == screened  # what people screened, no more
    assert counts.records_excluded == screened - 16
    assert counts.new_studies == 16

    data = to_json(counts)
    [stop] = data["stopping"]
    assert stop["rule"] == RULE and stop["target"] == TARGET and stop["forced"] is False
    assert stop["numbers"]["p_value"] < 0.05 and stop["numbers"]["screened"] == screened
    assert f"stopped early by the stopping rule {RULE}" in data["excluded_automatic_note"]
    assert f"stopped by {RULE}" in to_svg(counts)
    [row] = [r for r in csv.reader(io.StringIO(to_template_csv(counts))) if r and r[0] == "excluded_automatic"]
    assert row[-1] == str(310 - screened) and f"stopping rule {RULE}" in row[4]

    with review.store.read() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "stop")).all()
    assert event.actor == "alice" and event.detail["rule"] == RULE and event.detail["confidence"] == 0.95
    assert event.detail["numbers"]["recall_lower_bound"] >= TARGET


def test_a_forced_stop_is_marked_forced_in_every_output(review: Review) -> None:
    review.screen(60)
    note = "Protocol deadline; the remaining records were checked by keyword search"
    result = stop_stage(review.store, reviewer="alice", target=TARGET, force=True, note=note)
    assert result.stop.forced and not result.verdict.stop
    review.finish_full_text()
    counts = prisma_counts(review.store)
    check_identities(counts)
    assert counts.excluded_automatic == 250
    data = to_json(counts)
    assert data["stopping"][0]["forced"] is True and data["stopping"][0]["note"] == note
    assert data["excluded_automatic_note"].startswith("FORCED stop")
    assert "FORCED stop" in to_svg(counts)
    assert "FORCED stop" in to_template_csv(counts)
    assert "forced stop" in stops(review.store)[0].describe()
    with review.store.read() as s:
        reasons = set(s.scalars(select(Decision.reason).where(Decision.kind == "automation")))
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "stop")).one()
    assert reasons == {
        f"stopped early by {RULE} (90% recall with 95% confidence); forced stop, the rule did not say stop"
    }
    assert event.detail["forced"] is True and event.detail["note"] == note


def test_records_imported_after_a_stop_reopen_the_stage_for_them_only(tmp_path: Path) -> None:
    rows = _rows()
    review = _review(tmp_path / "living.db", rows[:280])
    review.screen_until_the_rule_says_stop()
    first = stop_stage(review.store, reviewer="alice", target=TARGET)
    new_ids = _import(review.store, rows[280:], name="PubMed update")
    assert records_left(review.store) == 30
    with review.store.read() as s:
        evidence = stage_evidence(s)
    assert evidence.unscreened == 30 and evidence.stopped == first.stop.records
    with review.store.read() as s:
        assert unscreened_groups(s, read_stage(s, "title_abstract")) == new_ids
    ranker = ProjectRanker(review.store)
    assert {r.record_id for r in ranker.ranking()} == set(new_ids)  # the stopped records stay out of the queue
    counts = prisma_counts(review.store)
    assert counts.screening_pending == 30 and counts.excluded_automatic == first.stop.records
    for rid, row in zip(new_ids, rows[280:], strict=True):
        d.decide(review.store, rid, "include" if row["label_included"] == "1" else "exclude", reviewer="alice")
    assert prisma_counts(review.store).screening_pending == 0


def test_undoing_a_stop_reopens_its_records_and_keeps_later_decisions(review: Review) -> None:
    screened = review.screen_until_the_rule_says_stop()
    result = stop_stage(review.store, reviewer="alice", target=TARGET)
    late = review.order[screened]  # a stopped record that a person screens after all
    with pytest.raises(d.AlreadyDecided, match="automation"):
        d.decide(review.store, late, "exclude", reviewer="alice")
    d.decide(review.store, late, "exclude", reviewer="alice", revise=True)
    undone = undo_stop(review.store, reviewer="alice")
    assert undone.records == result.stop.records - 1
    assert records_left(review.store) == result.stop.records - 1
    assert d.record_status(review.store, late).title_abstract.kind == "screen"
    [info] = stops(review.store)
    assert not info.active and info.undone_by == undone.id
    assert prisma_counts(review.store).excluded_automatic == 0
    with review.store.read() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "stop_undone")).all() == ["stop_undone"]
    with pytest.raises(DecisionError, match="no stop at title_abstract left to undo"):
        undo_stop(review.store, reviewer="alice")
    # and it can stop again, on the same evidence
    again = stop_stage(review.store, reviewer="alice", target=TARGET)
    assert again.stop.records == result.stop.records - 1


def test_in_dual_screening_only_an_adjudicator_stops(review: Review) -> None:
    set_mode(review.store, "title_abstract", "dual")
    add_reviewer(review.store, "bob")
    add_reviewer(review.store, "carol", role="adjudicator")
    with pytest.raises(DecisionError, match="may not stop"):
        stop_stage(review.store, reviewer="bob", target=TARGET, force=True, note="test")
    result = stop_stage(review.store, reviewer="carol", target=TARGET, force=True, note="test")
    assert result.stop.reviewer == "carol" and result.stop.records == 310


def test_full_text_does_not_stop_early(review: Review) -> None:
    with pytest.raises(DecisionError, match="only title/abstract screening stops early"):
        stop_stage(review.store, reviewer="alice", stage="full_text", force=True, note="x")


def test_the_ranker_does_not_learn_from_a_stops_excludes(review: Review) -> None:
    review.screen(60)
    before = ProjectRanker(review.store).learner.labels.copy()
    stop_stage(review.store, reviewer="alice", target=TARGET, force=True, note="test")
    after = ProjectRanker(review.store).learner.labels
    assert (after[before == 1] == 1).all() and (after[before == 0] == 0).all()
    assert int((after == 0).sum()) == int((before == 0).sum())  # no new excludes learned
    assert ProjectRanker(review.store).ranking() == []


def test_stop_on_postgresql(pg_url: str) -> None:
    review = _review(pg_url, _rows())
    review.screen_until_the_rule_says_stop()
    result = stop_stage(review.store, reviewer="alice", target=TARGET)
    assert records_left(review.store) == 0
    undo_stop(review.store, reviewer="alice")
    assert records_left(review.store) == result.stop.records


def test_cli_stop_refuses_then_stops_and_undoes(review: Review, tmp_path: Path) -> None:
    db = str(tmp_path / "review.db")
    review.screen(60)
    runner = CliRunner()
    refused = runner.invoke(app, ["stop", "--db", db, "--reviewer", "alice", "--target", "0.9"])
    assert refused.exit_code != 0 and "not stopped" in refused.output and "p = " in refused.output
    shown = runner.invoke(app, ["stops", "--db", db, "--target", "0.9"])
    assert shown.exit_code == 0 and "60 of 310 records screened" in shown.output and "≥ 90%" in shown.output
    assert re.search(r"estimated \d+\.\d%", shown.output)
    assert "recall ≥ 95% with 95%" in runner.invoke(app, ["stops", "--db", db]).output
    save_stop_settings(review.store, rule="buscar", target=0.8, confidence=0.9)  # the project's, from the dashboard
    assert "recall ≥ 80% with 90%" in runner.invoke(app, ["stops", "--db", db]).output
    forced = runner.invoke(
        app, ["stop", "--db", db, "--reviewer", "alice", "--target", "0.9", "--force", "--note", "Deadline"]
    )
    assert forced.exit_code == 0, forced.output
    assert "forced stop" in forced.output and "250 records not screened" in forced.output
    status = runner.invoke(app, ["status", "--db", db])
    assert "excluded by automation 250" in status.output and "stop #1, forced stop" in status.output
    prisma = runner.invoke(app, ["prisma", "--db", db, "--format", "json"])
    assert prisma.exit_code != 0  # the reports sought still need full text
    undone = runner.invoke(app, ["undo-stop", "--db", db, "--reviewer", "alice"])
    assert undone.exit_code == 0 and "250 records open again" in undone.output
    listed = runner.invoke(app, ["stops", "--db", db])
    assert "undone by" in listed.output
    status = runner.invoke(app, ["status", "--db", db])
    assert "excluded by automation" not in status.output and "stop #" not in status.output
    with open_store(db) as store:
        assert records_left(store) == 250


def test_prisma_json_of_a_stopped_review_through_the_cli(review: Review, tmp_path: Path) -> None:
    db = str(tmp_path / "review.db")
    screened = review.screen_until_the_rule_says_stop()
    stop_stage(review.store, reviewer="alice", target=TARGET)
    review.finish_full_text()
    result = CliRunner().invoke(app, ["prisma", "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["excluded_automatic"] == 310 - screened and data["records_screened"] == screened
    assert data["stopping"][0]["rule"] == RULE
