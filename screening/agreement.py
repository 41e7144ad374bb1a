"""Inter-rater agreement per reviewer pair: percent agreement and Cohen's kappa.

Only records that both reviewers decided as include or exclude at the stage
count (their latest votes that were not undone). A ``maybe`` is undecided, so a
record where either reviewer said maybe is left out of that pair's figures and
counted in ``maybe``. Resolutions, imported labels and automation are not votes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from .reviewers import check_stage, reviewer_names
from .schema import Stage
from .snapshot import read_stage
from .store import Store

LABELS = ("include", "exclude")


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: str
    reviewer_b: str
    n: int  # records both decided include/exclude
    agree: int
    both_include: int
    both_exclude: int
    maybe: int  # records both voted on where at least one said maybe
    percent: float | None
    kappa: float | None  # None when undefined (no records, or chance agreement is 1)


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of paired labels; None when expected agreement is 1 or there are no pairs."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in first) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def _pair(a: str, b: str, votes_a: dict[int, str], votes_b: dict[int, str]) -> PairAgreement:
    shared = sorted(votes_a.keys() & votes_b.keys())
    pairs = [(votes_a[r], votes_b[r]) for r in shared if votes_a[r] in LABELS and votes_b[r] in LABELS]
    agree = sum(x == y for x, y in pairs)
    return PairAgreement(
        reviewer_a=a,
        reviewer_b=b,
        n=len(pairs),
        agree=agree,
        both_include=sum(x == y == "include" for x, y in pairs),
        both_exclude=sum(x == y == "exclude" for x, y in pairs),
        maybe=len(shared) - len(pairs),
        percent=100.0 * agree / len(pairs) if pairs else None,
        kappa=cohen_kappa(pairs),
    )


def agreement(store: Store, stage: str = Stage.TITLE_ABSTRACT) -> list[PairAgreement]:
    """Agreement for every pair of reviewers who both voted on at least one record."""
    check_stage(stage)
    with store.read() as s:
        names = reviewer_names(s)
        by_reviewer: dict[int, dict[int, str]] = {}
        for gid, votes in read_stage(s, stage).votes.items():
            for rid, vote in votes.items():
                by_reviewer.setdefault(rid, {})[gid] = vote.value
    result = []
    for ra, rb in combinations(sorted(by_reviewer, key=lambda r: names[r]), 2):
        pair = _pair(names[ra], names[rb], by_reviewer[ra], by_reviewer[rb])
        if pair.n or pair.maybe:
            result.append(pair)
    return result
