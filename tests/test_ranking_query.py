"""Boolean queries as concept blocks: parsing, block matching on real records, and the cold-start ranking."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from screening.demo import DEMO_DIR, build_demo
from screening.ingest import import_file
from screening.ranking.active import ActiveLearner
from screening.ranking.features import build_features, query_similarity, zscore
from screening.ranking.inclusion import default_prior
from screening.ranking.project import INCLUSION_PRIOR_SETTING, ProjectRanker, _record_index, topic_text
from screening.ranking.query import (
    INCLUSION_WEIGHT,
    MAX_DEPTH,
    BooleanQuery,
    Node,
    RecordIndex,
    Term,
    block_matches,
    block_scores,
    boolean_prior,
    concept_query,
    parse_query,
)
from screening.schema import Record
from screening.store import Store, init_project

DEMO_QUERY = json.loads((DEMO_DIR / "project.json").read_text(encoding="utf-8"))["query"]


def _words(term: Term) -> str:
    return " ".join(w + ("*" if cut else "") for w, cut in term.words)


def _block_words(block: Node | Term) -> list[str]:
    children = block.children if isinstance(block, Node) else (block,)
    return [_words(t) for t in children if isinstance(t, Term)]


# ---- parsing ----------------------------------------------------------------------------------


def test_demo_query_has_a_drug_block_and_a_pain_block() -> None:
    query = parse_query(DEMO_QUERY)
    assert query is not None and len(query.blocks) == 2 and not query.excluded
    drugs, pain = (_block_words(b) for b in query.blocks)
    assert "psilocybin" in drugs and "lysergic acid diethylamide" in drugs and "psychedelic*" in drugs
    assert "3 4 methylenedioxymethamphetamine" in drugs
    assert {"chronic pain", "cluster headache", "complex regional pain syndrome", "fibromyalgia"} <= set(pain)
    assert all(b.op == "or" for b in query.blocks)


def test_tags_choose_where_a_term_is_matched() -> None:
    query = parse_query('"Chronic Pain"[Mesh] AND pain[ti] AND relief[Title/Abstract] AND rct[pt] AND opioid[mh:noexp]')
    assert query is not None
    fields = [b.field for b in query.blocks]
    assert fields == ["subject", "title", "text", "subject", "subject"]
    assert query.blocks[0].phrase  # a tagged or quoted multi-word term is a phrase


def test_terms_that_say_nothing_about_the_topic_drop_out() -> None:
    query = parse_query("(ketamine OR esketamine) AND (migraine) AND english[la] AND 2010:2020[dp] AND smith j[au]")
    assert query is not None and len(query.blocks) == 2
    assert parse_query("smith j[au] AND 2020[dp]") is None


def test_truncation_and_phrases() -> None:
    query = parse_query('psilocyb*[tiab] AND "cluster headache*" AND chronic pain')
    assert query is not None
    cut, phrase, bag = query.blocks
    assert cut.words == (("psilocyb", True),)
    assert phrase.phrase and phrase.words == (("cluster", False), ("headache", True))
    assert not bag.phrase and len(bag.words) == 2  # untagged, unquoted words: all needed, in any order


def test_nested_parentheses_and_left_to_right() -> None:
    query = parse_query("((a OR (b AND c)) OR d) AND (e OR f)")
    assert query is not None and len(query.blocks) == 2
    first = query.blocks[0]
    assert first.op == "or" and [type(c).__name__ for c in first.children] == ["Term", "Node", "Term"]
    # PubMed has no precedence: a OR b AND c is (a OR b) AND c
    chain = parse_query("a OR b AND c")
    assert chain is not None and [_block_words(b) for b in chain.blocks] == [["a", "b"], ["c"]]


def test_not_blocks() -> None:
    query = parse_query("(ketamine OR lsd) AND pain NOT (rats OR mice)")
    assert query is not None
    assert [_block_words(b) for b in query.blocks] == [["ketamine", "lsd"], ["pain"]]
    assert [_block_words(b) for b in query.excluded] == [["rats", "mice"]]
    # as text for an embedding model: the wanted blocks only, the NOT-ed ones left out
    assert query.sentence() == "ketamine or lsd; pain"
    inner = parse_query("(pain NOT cancer) AND ketamine")
    assert inner is not None and len(inner.blocks) == 2 and inner.excluded == (parse_query("a NOT cancer").excluded)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Opioids, long-acting, chronic non-cancer pain",
        "include trials and not reviews",
        "AND OR NOT",
        "()",
        '""[tiab]',
        "[tiab]",
        None,
        42,
    ],
)
def test_not_a_boolean_query(text: object) -> None:
    assert parse_query(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "(ketamine OR lsd AND (pain OR migraine",
        "ketamine OR lsd)) AND pain)",
        ")ketamine AND pain(",
        '"ketamine AND pain',
        "ketamine AND AND pain OR",
        "NOT ketamine AND pain",
        "ketamine[tiab AND pain",
        "(" * 5000 + "ketamine AND pain" + ")" * 10,
        "ketamine AND pain" + ")" * 5000,
        "ketamine AND " * 2000 + "pain",
    ],
)
def test_malformed_queries_are_read_as_well_as_possible(text: str) -> None:
    query = parse_query(text)
    assert query is not None
    words = {w for t in query.terms() for w, _ in t.words}
    assert {"ketamine", "pain"} <= words


def test_random_query_text_never_raises() -> None:
    """Seeded scraps of query syntax: parsing and scoring them gives a query or None, never an exception."""
    texts = ["Ketamine for chronic pain. A trial in café patients (n=3).", 'LSD [review] and "migraine" 3,4-x', "Nil"]
    index = RecordIndex(build_features(texts), text_of=lambda r: [texts[i] for i in r], subjects=["Pain", "", ""])
    pieces = [*'()"[]* :~/-,', "AND", "OR", "NOT", "ketamine", "pain", "chronic", "tiab", "mh", "ti", "au", "é", "x*"]
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) + rng.choice(["", " "]) for _ in range(rng.randint(0, 25)))
        query = parse_query(text)
        if query is not None:
            assert block_scores(query, index).shape == (3,)


def test_deep_nesting_does_not_recurse_without_bound() -> None:
    query = parse_query("(" * (MAX_DEPTH * 4) + "a OR b" + ")" * (MAX_DEPTH * 4) + " AND c")
    assert query is not None and len(query.blocks) == 2


def test_concept_query_needs_two_blocks() -> None:
    assert concept_query("ketamine[tiab] OR lsd[tiab]") is None
    assert parse_query("ketamine[tiab] OR lsd[tiab]") is not None
    assert concept_query(DEMO_QUERY) is not None


# ---- matching ---------------------------------------------------------------------------------


def _index(texts: list[str], subjects: list[str] | None = None, *, with_text: bool = True) -> RecordIndex:
    features = build_features(texts, titles=[t.split(".")[0] for t in texts])
    text_of = (lambda rows: [texts[i] for i in rows]) if with_text else None
    return RecordIndex(features, text_of=text_of, subjects=subjects)


def test_block_matching_rules() -> None:
    texts = [
        "Psilocybin for cluster headache. A trial.",
        "Headache cluster after psilocybine. A case.",  # words of the phrase, not in order
        "Ketamine in chronic pain. Randomised.",
        "Clinic audit. Ketamine in chronic pain was not given.",  # "chronic pain" in the abstract only
        "Psychedelics and society. No pain here.",
        "Café visitors and migraine. Questionnaire.",
    ]
    index = _index(texts)
    pos, _ = block_matches(parse_query('(psilocybin OR psychedelic* OR ketamine) AND "cluster headache"'), index)
    assert pos[:, 0].tolist() == [True, False, True, True, True, False]
    assert pos[:, 1].tolist() == [True, False, False, False, False, False]
    pos, _ = block_matches(parse_query('ketamine AND "chronic pain"[ti]'), index)
    assert pos.all(axis=1).tolist() == [False, False, True, False, False, False]  # [ti]: the title only
    pos, _ = block_matches(parse_query("cafe AND migraine"), index)  # accents folded
    assert pos.all(axis=1).tolist() == [False] * 5 + [True]
    # without the text, a phrase matches as a bag of words
    pos, _ = block_matches(parse_query('psilocybin* AND "cluster headache"'), _index(texts, with_text=False))
    assert pos.all(axis=1).tolist() == [True, True, False, False, False, False]


def test_not_blocks_lower_the_score() -> None:
    texts = ["Ketamine for migraine in rats.", "Ketamine for migraine in patients.", "Migraine diaries."]
    scores = block_scores(parse_query("ketamine AND migraine NOT (rats OR mice)"), _index(texts))
    assert scores.tolist() == [1.0, 2.0, 1.0]


def test_subject_tags_match_mesh_terms() -> None:
    texts = ["Intravenous infusion outcomes. Twelve patients.", "Hallucinogens in history. Essay."]
    subjects = ["Ketamine/therapeutic use; Chronic Pain/drug therapy; Randomized Controlled Trial", ""]
    index = _index(texts, subjects)
    pos, _ = block_matches(parse_query('"Ketamine"[Mesh] AND "Chronic Pain"[mh] AND infusion[tiab]'), index)
    assert pos.all(axis=1).tolist() == [True, False]
    pos, _ = block_matches(parse_query("hallucinogens[mh] AND essay"), index)  # [mh] matches text too
    assert pos.all(axis=1).tolist() == [False, True]
    pos, _ = block_matches(parse_query("ketamine[tiab] AND infusion"), index)  # [tiab] does not read MeSH
    assert not pos.all(axis=1).any()


def test_demo_query_on_real_psychedelic_pain_records() -> None:
    """Records gathered because they name a psychedelic (by a term list of their own) all match the drug block;
    those whose pain terms name a chronic condition of the query match the pain block."""
    frame = pd.read_csv(DEMO_DIR / "psychedelic_pain_records.csv.gz", keep_default_na=False)
    texts = [f"{t} {a}" for t, a in zip(frame["title"], frame["abstract"], strict=True)]
    pos, _ = block_matches(parse_query(DEMO_QUERY), _index(texts))
    named = (frame["psychedelic_terms"] != "").to_numpy()
    assert named.sum() > 100 and pos[named, 0].all() and not pos[~named, 0].any()
    chronic = frame["pain_terms"].str.contains("fibromyalgia|phantom limb|migraine")
    assert chronic.sum() >= 3 and pos[chronic.to_numpy(), 1].all()
    assert 0 < pos[:, 1].sum() < len(frame)  # most are acute or animal pain: not every record matches both


def test_prior_orders_by_blocks_then_cosine(fixtures: Path) -> None:
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz", keep_default_na=False)
    texts = [f"{t} {a}" for t, a in zip(frame["title"], frame["abstract"], strict=True)]
    features = build_features(texts, titles=list(frame["title"]))
    query = parse_query("(rhinitis OR urticaria) AND (fexofenadine OR loratadine OR cetirizine) AND placebo")
    index = RecordIndex(features, text_of=lambda rows: [texts[i] for i in rows])
    cosine = query_similarity(features, ["rhinitis urticaria fexofenadine loratadine cetirizine placebo"])
    prior = boolean_prior(query, index, cosine)
    blocks = block_scores(query, index)
    order = np.argsort(-prior, kind="stable")
    assert np.all(np.diff(blocks[order]) <= 0)  # block counts never go up along the order
    assert (blocks == 3).sum() >= 5 and (blocks < 3).sum() > 100
    top = order[blocks[order] == 3]
    assert np.all(np.diff(cosine[top]) <= 1e-12)  # within a count, by cosine


def test_twenty_thousand_records_are_scored_alike_when_their_texts_are_alike(fixtures: Path) -> None:
    """20,000 records (the fixture's real texts, repeated): one vectorised pass scores each copy alike.

    How fast is a benchmark's question (benchmarks/cold_start.py), not a test's.
    """
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz", keep_default_na=False)
    base = [f"{t} {a}" for t, a in zip(frame["title"], frame["abstract"], strict=True)]
    texts = [f"{base[i % len(base)]} r{i}" for i in range(20_000)]
    features = build_features(texts)
    query = parse_query(DEMO_QUERY + ' AND (rhinitis OR "allergic rhinitis"[tiab] OR urticaria[mh] OR placebo*)')
    subjects = ["Rhinitis, Allergic, Seasonal; Humans"] * len(texts)
    index = RecordIndex(features, text_of=lambda r: [texts[i] for i in r], subjects=subjects)
    blocks = block_scores(query, index)
    assert blocks.shape == (20_000,)
    copies = blocks[: len(base) * (len(texts) // len(base))].reshape(-1, len(base))
    assert (copies == copies[0]).all() and copies[0].max() > copies[0].min()


# ---- in a project -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = build_demo(tmp_path_factory.mktemp("demo") / "d.db")
    yield store
    store.close()


def test_demo_cold_start_puts_records_matching_every_block_first(demo: Store) -> None:
    ranker = ProjectRanker(demo)
    query = concept_query(demo.get_setting("query"))
    every = block_matches(query, _record_index(demo, ranker.features))[0].all(axis=1)
    assert every.sum() >= 12  # the issue counted 12 records naming both; the demo holds at least those
    top = [ranker._row[r.record_id] for r in ranker.ranking(40)]
    n_every = int(every.sum())
    # every record that names both a psychedelic and a chronic pain condition comes before any other
    assert every[top[: min(40, n_every)]].all()
    # the old prior (cosine to the query as a bag of words) did not do that
    cosine = query_similarity(ranker.features, topic_text(demo))
    old = np.argsort(-cosine, kind="stable")[:40]
    assert every[old].sum() < every[top].sum() / 2


def test_prior_gives_way_once_the_model_can_learn(demo: Store) -> None:
    ranker = ProjectRanker(demo)
    prior = ranker.learner.prior_scores
    assert prior is not None and prior.max() >= 2
    first, second = (ranker._row[r.record_id] for r in ranker.ranking(2))
    assert ranker.learner.scores()[first] == prior.max()
    ranker.learner.set_labels({first: ActiveLearner.INCLUDE, second: ActiveLearner.EXCLUDE})
    assert not np.array_equal(ranker.learner.scores(), prior)


def test_plain_topic_ranks_by_the_cosine_and_the_inclusion_prior(db_path: Path, fixtures: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz")
    csv = tmp_path / "a.csv"
    frame.drop(columns=["label_included"]).to_csv(csv, index=False)
    store = init_project(db_path, name="A", query="fexofenadine OR loratadine")  # one block: not enough
    import_file(store, csv, source_name="PubMed")
    ranker = ProjectRanker(store)
    cosine = query_similarity(ranker.features, topic_text(store))
    with store.read() as s:
        texts = [f"{t} {a}" for t, a in s.execute(select(Record.title, Record.abstract).order_by(Record.id))]
    inclusion = default_prior().score_texts(texts)
    expected = zscore(cosine) + INCLUSION_WEIGHT * zscore(inclusion)
    assert np.allclose(ranker.learner.prior_scores, expected, atol=1e-6)
    store.set_setting(INCLUSION_PRIOR_SETTING, False)  # turned off: the cosine alone, as before
    assert np.array_equal(ProjectRanker(store).learner.prior_scores, cosine)
    store.close()


def test_project_mesh_terms_reach_the_blocks(db_path: Path, fixtures: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(fixtures / "ranking" / "cohen2006_Antihistamines.csv.gz").head(40)
    csv = tmp_path / "a.csv"
    frame.drop(columns=["label_included"]).to_csv(csv, index=False)
    store = init_project(db_path, name="A", query='"Zzyzx Syndrome"[Mesh] AND (placebo OR antihistamine*)')
    import_file(store, csv, source_name="PubMed")
    with store.begin() as s:
        record = s.scalars(select(Record).where(Record.abstract.contains("placebo")).order_by(Record.id.desc())).first()
        record.mesh_terms = ["Zzyzx Syndrome/drug therapy", "Humans"]
        target = record.id
    ranker = ProjectRanker(store)
    assert ranker.ranking(1)[0].record_id == target
    store.close()


def test_boolean_query_type_is_public() -> None:
    assert isinstance(parse_query("a AND b"), BooleanQuery)
