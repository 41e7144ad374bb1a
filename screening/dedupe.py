"""Find records that are the same study report, and group them without deleting any.

Matching runs in three passes, most certain first:

1. the same PMID;
2. the same DOI, after normalisation (case, ``https://doi.org/`` prefixes);
3. the same normalised title with a close year (and first author, where both
   have one), fuzzy enough to survive case, punctuation, HTML, diacritics and
   MEDLINE's ``[Translated title].`` brackets.

A pass never joins two records whose PMIDs or DOIs both exist and differ: those
are different articles however alike their titles (a comment and the trial it
discusses, two parts of one series). Near misses are kept as *uncertain* pairs
for ``screening dedupe --review``.

A group's canonical record is its oldest (lowest id), so ids that reviewers have
already screened never move. Duplicates point at it through ``canonical_id``;
empty fields of the canonical record are filled from its twins.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from rapidfuzz.fuzz import ratio
from rapidfuzz.process import cpdist
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import access
from .errors import DedupeError, RecordNotFound
from .schema import DuplicatePair, Record, Source, utcnow
from .store import Store, audit

DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)?(?:doi:\s*)?", re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")
DOI_MAX = 300  # the records.doi column; real DOIs are far shorter
NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_doi(doi: str | None) -> str | None:
    """Lower-case DOI without resolver prefix or trailing punctuation, or None."""
    if not doi:
        return None
    value = DOI_PREFIX.sub("", str(doi).strip()).strip().rstrip(".;,")
    value = value.lower()
    return value if value.startswith("10.") and "/" in value and len(value) <= DOI_MAX else None


def _fold(text: str) -> str:
    """Strip accents ("Ménière" -> "Meniere"); ASCII text, the common case, passes untouched."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def title_key(title: str | None) -> str:
    """A title reduced to lower-case words: no markup, accents, brackets or punctuation."""
    if not title:
        return ""
    text = html.unescape(TAG.sub(" ", title)).strip()
    # MEDLINE marks translated titles as "[Title in English]." : drop the brackets
    if text.startswith("[") and (text.endswith("].") or text.endswith("]")):
        text = text[1:].rstrip(".").rstrip("]")
    text = _fold(text).lower()
    return NON_ALNUM.sub(" ", text).strip()


def abstract_key(abstract: str | None) -> str:
    """The first words of an abstract, normalised like titles; empty when too short to be evidence."""
    # ~12 characters a word is plenty to find the first ABSTRACT_WORDS words
    words = title_key((abstract or "")[: ABSTRACT_WORDS * 12]).split()
    return " ".join(words[:ABSTRACT_WORDS]) if len(words) >= ABSTRACT_MIN_WORDS else ""


def first_author_key(authors: Iterable[str] | None) -> str:
    """Surname of the first author, folded, for a tie-break between similar titles."""
    for author in authors or ():
        name = _fold(str(author)).lower().strip()
        if not name:
            continue
        surname = name.split(",")[0] if "," in name else name.split()[0]
        return NON_ALNUM.sub("", surname)
    return ""


@dataclass(frozen=True)
class MatchCandidate:
    """The fields matching looks at, for one record."""

    id: int
    pmid: str | None
    doi: str | None
    title_key: str
    year: int | None
    author_key: str
    abstract_key: str = ""


class UnionFind:
    """Groups of ids; the smallest id of a group is its root, so canonical ids are stable."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        self.parent[hi] = lo
        return lo


TITLE_MERGE = 0.96
TITLE_UNCERTAIN = 0.88
ABSTRACT_MERGE = 0.92
ABSTRACT_UNCERTAIN = 0.85
ABSTRACT_DIFFERENT = 0.6
ABSTRACT_WORDS = 80  # words of the abstract compared
ABSTRACT_MIN_WORDS = 30  # shorter abstracts are not evidence
TITLE_FLOOR = 0.5  # titles this different are never the same report, whatever the abstracts say
SHORT_TITLE = 30  # characters: shorter titles ("Low back pain") need every other field to agree
NEIGHBOURS = 6  # sorted-neighbourhood window for fuzzy title comparison


@dataclass(frozen=True)
class PairFinding:
    """One pair the matcher looked at and what it concluded."""

    a: int
    b: int
    method: str
    score: float
    merge: bool


class Groups:
    """Union-find over record ids that refuses to join groups whose PMIDs or DOIs differ, or that hold
    the two records of a pair a reviewer judged distinct (``apart``)."""

    def __init__(self, candidates: dict[int, MatchCandidate], apart: Iterable[tuple[int, int]] = ()) -> None:
        self.uf = UnionFind()
        self.pmids: dict[int, set[str]] = {}
        self.dois: dict[int, set[str]] = {}
        self.apart: dict[int, set[int]] = defaultdict(set)  # root -> records its group must never hold
        for c in candidates.values():
            self.uf.find(c.id)
            self.pmids[c.id] = {c.pmid} if c.pmid else set()
            self.dois[c.id] = {c.doi} if c.doi else set()
        for a, b in apart:
            if a in candidates and b in candidates:
                self.apart[a].add(b)
                self.apart[b].add(a)

    def same(self, a: int, b: int) -> bool:
        return self.uf.find(a) == self.uf.find(b)

    def conflict(self, a: int, b: int, *, ignore_doi: bool = False) -> bool:
        ra, rb = self.uf.find(a), self.uf.find(b)
        if any(self.uf.find(x) == rb for x in self.apart.get(ra, ())):
            return True
        if self.pmids[ra] and self.pmids[rb] and not self.pmids[ra] & self.pmids[rb]:
            return True
        return not ignore_doi and bool(self.dois[ra] and self.dois[rb] and not self.dois[ra] & self.dois[rb])

    def union(self, a: int, b: int) -> None:
        ra, rb = self.uf.find(a), self.uf.find(b)
        if ra == rb:
            return
        root = self.uf.union(ra, rb)
        other = rb if root == ra else ra
        self.pmids[root] |= self.pmids.pop(other)
        self.dois[root] |= self.dois.pop(other)
        if other in self.apart:
            self.apart[root] |= self.apart.pop(other)

    def root(self, x: int) -> int:
        return self.uf.find(x)


def _exact_pass(groups: Groups, candidates: Iterable[MatchCandidate], attr: str) -> list[PairFinding]:
    findings = []
    by_value: dict[str, list[int]] = defaultdict(list)
    for c in candidates:
        value = getattr(c, attr)
        if value:
            by_value[value].append(c.id)
    for ids in by_value.values():
        first = ids[0]
        for other in ids[1:]:
            if not groups.same(first, other) and not groups.conflict(first, other, ignore_doi=attr == "pmid"):
                groups.union(first, other)
                findings.append(PairFinding(first, other, attr, 1.0, True))
    return findings


def _years_compatible(a: int | None, b: int | None) -> bool:
    return a is None or b is None or abs(a - b) <= 1


def _word_prefix(a: str, b: str) -> bool:
    """One title is the other cut short at a word boundary ("Hypertension in pregnancy" + subtitle)."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return short.count(" ") >= 1 and long.startswith(short + " ")


def judge_pair_fields(a: MatchCandidate, b: MatchCandidate) -> tuple[float, bool] | None:
    """Score two records on title, abstract, year and first author; None when clearly different."""
    if not a.title_key or not b.title_key:
        return None
    title = ratio(a.title_key, b.title_key) / 100.0
    abstract = ratio(a.abstract_key, b.abstract_key) / 100.0 if a.abstract_key and b.abstract_key else None
    return _verdict(a, b, title, abstract)


def _verdict(a: MatchCandidate, b: MatchCandidate, title: float, abstract: float | None) -> tuple[float, bool] | None:
    prefix = title < TITLE_MERGE and _word_prefix(a.title_key, b.title_key)
    if title < TITLE_FLOOR and not prefix:
        return None
    if title < TITLE_UNCERTAIN and (abstract or 0.0) < ABSTRACT_UNCERTAIN:
        return None
    years_ok = _years_compatible(a.year, b.year)
    authors_ok = not a.author_key or not b.author_key or a.author_key == b.author_key
    abstracts_agree = abstract is not None and abstract >= ABSTRACT_MERGE
    abstracts_differ = abstract is not None and abstract < ABSTRACT_DIFFERENT
    if min(len(a.title_key), len(b.title_key)) < SHORT_TITLE:
        # a short generic title ("Low back pain") needs more than the title to agree
        known_same = a.year is not None and a.year == b.year and a.author_key != "" and a.author_key == b.author_key
        titles_fit = title == 1.0 or prefix
        merge = titles_fit and (abstracts_agree or (known_same and not abstracts_differ))
    elif abstracts_agree:
        merge = years_ok and authors_ok
    else:
        merge = title >= TITLE_MERGE and years_ok and authors_ok and not abstracts_differ
    return max(title, abstract or 0.0), merge


def _pair_scores(pairs: list[tuple[MatchCandidate, MatchCandidate]]) -> list[tuple[float, float | None]]:
    """Title and abstract similarity of many pairs at once, in RapidFuzz's threads."""
    if not pairs:
        return []
    titles = cpdist([a.title_key for a, _ in pairs], [b.title_key for _, b in pairs], scorer=ratio, workers=-1)
    both = [i for i, (a, b) in enumerate(pairs) if a.abstract_key and b.abstract_key]
    abstracts: dict[int, float] = {}
    if both:
        scores = cpdist(
            [pairs[i][0].abstract_key for i in both],
            [pairs[i][1].abstract_key for i in both],
            scorer=ratio,
            workers=-1,
        )
        abstracts = dict(zip(both, (float(x) / 100.0 for x in scores), strict=True))
    return [(float(t) / 100.0, abstracts.get(i)) for i, t in enumerate(titles)]


def _neighbour_pairs(candidates: list[MatchCandidate]) -> set[tuple[int, int]]:
    """Pairs close in sorted title, reversed title or abstract order: the fuzzy blocking step."""
    pairs: set[tuple[int, int]] = set()
    keys = (lambda c: c.title_key, lambda c: c.title_key[::-1], lambda c: c.abstract_key)
    for key in keys:
        ordered = sorted((c for c in candidates if key(c)), key=lambda c: (key(c), c.id))
        for i, c in enumerate(ordered):
            for d in ordered[i + 1 : i + 1 + NEIGHBOURS]:
                pairs.add((min(c.id, d.id), max(c.id, d.id)))
    return pairs


def find_duplicates(
    candidates: list[MatchCandidate],
    *,
    existing: Iterable[tuple[int, int]] = (),
    rejected: Iterable[tuple[int, int]] = (),
) -> tuple[dict[int, int], list[PairFinding]]:
    """Group candidates; return {record id: canonical id} for duplicates, and every fuzzy finding.

    ``existing`` pairs are kept joined (groups never split by a re-run); the two records of a
    ``rejected`` pair (a reviewer said "not duplicates") never end up in one group, by any match.
    """
    by_id = {c.id: c for c in candidates}
    rejected = list(rejected)
    groups = Groups(by_id, apart=rejected)
    for a, b in existing:
        groups.union(a, b)
    blocked = {(min(a, b), max(a, b)) for a, b in rejected}
    findings = _exact_pass(groups, candidates, "pmid") + _exact_pass(groups, candidates, "doi")
    pairs = sorted(_neighbour_pairs(candidates))
    # merge the surest pairs first, so a weaker pair cannot block a stronger one
    todo = [(by_id[a], by_id[b]) for a, b in pairs if (a, b) not in blocked and not groups.same(a, b)]
    judged = []
    for (a, b), (title, abstract) in zip(todo, _pair_scores(todo), strict=True):
        verdict = _verdict(a, b, title, abstract)
        if verdict is not None:
            judged.append((verdict[0], a.id, b.id, verdict[1]))
    judged.sort(key=lambda t: (-t[0], t[1], t[2]))
    for score, a, b, merge in judged:
        if groups.same(a, b):
            continue
        can_merge = merge and not groups.conflict(a, b)
        if can_merge:
            groups.union(a, b)
        findings.append(PairFinding(a, b, "fuzzy", score, can_merge))
    mapping = {c.id: groups.root(c.id) for c in candidates if groups.root(c.id) != c.id}
    return mapping, findings


# -- the project side -------------------------------------------------------

FILLABLE = ("abstract", "pmid", "doi", "year", "journal", "volume", "issue", "pages", "language")
FILLABLE_LISTS = ("authors", "mesh_terms", "keywords", "publication_types")
# a group is retracted, or withdrawn from PubMed, when any of its records is: whichever was imported first
FLAGS = ("retracted", "deleted_from_source")


def _empty(name: str) -> object:
    """What a filled field is given back as, when the record it came from leaves the group."""
    if name in FILLABLE_LISTS:
        return []
    return False if name in FLAGS else "" if name == "abstract" else None


@dataclass(frozen=True)
class DedupeResult:
    records: int
    groups: int
    duplicates: int
    new_duplicates: int
    uncertain: int


def _candidates(session: Session) -> tuple[list[MatchCandidate], list[tuple[int, int]]]:
    rows = session.execute(
        select(
            Record.id,
            Record.pmid,
            Record.doi,
            Record.title_key,
            Record.year,
            Record.authors,
            Record.abstract,
            Record.canonical_id,
        ).order_by(Record.id)
    )
    candidates, existing = [], []
    for rid, pmid, doi, tkey, year, authors, abstract, canonical in rows:
        candidates.append(
            MatchCandidate(rid, pmid, doi, tkey or "", year, first_author_key(authors), abstract_key(abstract))
        )
        if canonical is not None:
            existing.append((rid, canonical))
    return candidates, existing


def _fill_canonical(session: Session, canonical_ids: set[int], mapping: dict[int, int]) -> None:
    """Give each canonical record the fields it lacks and a twin has (an abstract, a PMID)."""
    members: dict[int, list[int]] = defaultdict(list)
    for rid, root in mapping.items():
        if root in canonical_ids:
            members[root].append(rid)
    wanted = sorted(set(members) | {rid for ids in members.values() for rid in ids})
    records: dict[int, Record] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        records.update((r.id, r) for r in session.scalars(select(Record).where(Record.id.in_(chunk))))
    for root, ids in members.items():
        canonical = records[root]
        filled = []
        for twin in (records[rid] for rid in sorted(ids)):
            for name in FILLABLE + FILLABLE_LISTS + FLAGS:
                if not getattr(canonical, name) and getattr(twin, name):
                    setattr(canonical, name, getattr(twin, name))
                    filled.append(name)
        if filled:
            canonical.extra = {**(canonical.extra or {}), "filled_from_duplicates": sorted(set(filled))}


def _flagged_groups(session: Session) -> set[int]:
    """Groups with a retracted or withdrawn record their canonical record does not say so yet (index searches)."""
    flagged = select(Record.canonical_id).where(
        Record.canonical_id.is_not(None), Record.retracted.is_(True) | Record.deleted_from_source.is_(True)
    )
    roots = set(session.scalars(flagged))
    if not roots:
        return set()
    unflagged = select(Record.id).where(
        Record.id.in_(roots), Record.retracted.is_(False) | Record.deleted_from_source.is_(False)
    )
    return set(session.scalars(unflagged))


def describe_source(source: Source) -> str:
    """'source 3 (Embase, embase.ris)', as messages name a source."""
    return f"source {source.id} ({source.name}, {source.file_name or source.query or source.method})"


def pending_sources(session: Session) -> list[Source]:
    """Sources whose records deduplication has not taken in (an import killed before it, or ``--no-dedupe``)."""
    query = select(Source).where(Source.deduped_at.is_(None), Source.status == "complete", Source.count_retrieved > 0)
    return list(session.scalars(query.order_by(Source.id)))


def finish_pending_dedupe(store: Store, *, actor: str | None = None) -> tuple[list[str], DedupeResult | None]:
    """Run the deduplication an earlier import did not finish (killed, or ``--no-dedupe``), if one is owed.

    Returns the sources it was owed for, described, and what it did. A cheap check when
    nothing is owed: the sources table is small.
    """
    with store.read() as session:
        owed = [describe_source(s) for s in pending_sources(session)]
    return (owed, dedupe(store, actor=actor)) if owed else (owed, None)


def dedupe(store: Store, *, actor: str | None = None) -> DedupeResult:
    """Group the project's duplicates, in one transaction, and log what changed."""
    with store.begin() as session:
        access.require_owner(session, "deduplicate the records")
        candidates, existing = _candidates(session)
        rejected = session.execute(
            select(DuplicatePair.record_id, DuplicatePair.other_id).where(DuplicatePair.status == "rejected")
        ).all()
        mapping, findings = find_duplicates(candidates, existing=existing, rejected=rejected)
        before = dict(existing)
        changed = {rid: root for rid, root in mapping.items() if before.get(rid) != root}
        if changed:
            session.execute(update(Record), [{"id": rid, "canonical_id": root} for rid, root in changed.items()])
        known = {
            (a, b): pid
            for pid, a, b in session.execute(select(DuplicatePair.id, DuplicatePair.record_id, DuplicatePair.other_id))
        }
        uncertain = 0
        for f in findings:
            if (f.a, f.b) in known:
                continue
            status = "merged" if f.merge else "uncertain"
            uncertain += status == "uncertain"
            session.add(DuplicatePair(record_id=f.a, other_id=f.b, method=f.method, score=f.score, status=status))
        _fill_canonical(session, set(changed.values()) | _flagged_groups(session), mapping)
        done = update(Source).where(Source.deduped_at.is_(None), Source.status != "running")
        session.execute(done.values(deduped_at=utcnow()))
        result = DedupeResult(
            records=len(candidates),
            groups=len(set(mapping.values())),
            duplicates=len(mapping),
            new_duplicates=len(changed),
            uncertain=uncertain,
        )
        audit(session, "dedupe", asdict(result), actor=actor)
    return result


@dataclass(frozen=True)
class UncertainPair:
    pair_id: int
    score: float
    a: Record
    b: Record


def uncertain_pairs(store: Store) -> list[UncertainPair]:
    """Pairs the matcher was unsure of and nobody has judged, most alike first."""
    with store.read() as session:
        rows = session.scalars(
            select(DuplicatePair)
            .where(DuplicatePair.status == "uncertain")
            .order_by(DuplicatePair.score.desc(), DuplicatePair.id)
        ).all()
        out = []
        for pair in rows:
            a, b = session.get(Record, pair.record_id), session.get(Record, pair.other_id)
            if (a.canonical_id or a.id) == (b.canonical_id or b.id):
                continue  # joined since, by another pair
            out.append(UncertainPair(pair.id, pair.score, a, b))
        return out


def _group_of(session: Session, record: Record) -> list[Record]:
    root = record.canonical_id or record.id
    return list(session.scalars(select(Record).where((Record.id == root) | (Record.canonical_id == root))))


def _components(members: list[Record], links: list[tuple[int, int]]) -> list[list[int]]:
    """The groups the merged pairs among ``members`` still make, each sorted, the lowest id first."""
    parent = {m.id: m.id for m in members}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for rid in parent:
        groups[find(rid)].append(rid)
    return sorted(sorted(g) for g in groups.values())


def _split(session: Session, pair: DuplicatePair) -> list[list[int]]:
    """Take two merged records apart: the group is regrouped by its merged pairs, this one left out.

    Each record keeps its own sources and decision rows; a part that leaves gets its own
    canonical record (its lowest id), so decisions made on the group stay with the group's
    canonical record. Fields the canonical record took from a record that leaves are given
    back (emptied, then filled again from those that stay).
    """
    a = session.get(Record, pair.record_id)
    members = _group_of(session, a)
    ids = {m.id for m in members}
    links = [
        (x, y)
        for pid, x, y in session.execute(
            select(DuplicatePair.id, DuplicatePair.record_id, DuplicatePair.other_id).where(
                DuplicatePair.status == "merged", DuplicatePair.record_id.in_(ids), DuplicatePair.other_id.in_(ids)
            )
        )
        if pid != pair.id
    ]
    parts = _components(members, links)
    part_of = {rid: i for i, part in enumerate(parts) for rid in part}
    if part_of[pair.record_id] == part_of[pair.other_id]:
        linking = [f"{x}~{y}" for x, y in links if part_of[x] == part_of[pair.record_id]]
        raise DedupeError(
            f"records {pair.record_id} and {pair.other_id} are also joined through other merged pairs "
            f"({', '.join(linking)}): judge those with 'screening dedupe --different PAIR' first; nothing changed"
        )
    root = min(ids)
    by_id = {m.id: m for m in members}
    canonical = by_id[root]
    leaving = [by_id[rid] for part in parts if root not in part for rid in part]
    for name in (canonical.extra or {}).get("filled_from_duplicates", []):
        if any(getattr(r, name) == getattr(canonical, name) for r in leaving):
            setattr(canonical, name, _empty(name))
    for part in parts:
        head = part[0]
        for rid in part:
            by_id[rid].canonical_id = None if rid == head else head
    session.flush()
    stay = next(part for part in parts if root in part)
    _fill_canonical(session, {root}, {rid: root for rid in stay if rid != root})
    return parts


def judge_pair(store: Store, pair_id: int, *, duplicate: bool, actor: str | None = None) -> None:
    """A reviewer's verdict on a pair: merge the two groups, or keep them apart for good (splitting them if merged)."""
    with store.begin() as session:
        access.require_owner(session, "judge a duplicate pair")
        pair = session.get(DuplicatePair, pair_id)
        if pair is None:
            raise RecordNotFound(f"no duplicate pair with id {pair_id}")
        a, b = session.get(Record, pair.record_id), session.get(Record, pair.other_id)
        ra, rb = a.canonical_id or a.id, b.canonical_id or b.id
        detail: dict[str, object] = {"pair": pair_id, "duplicate": duplicate}
        if duplicate and ra != rb:
            root, other = min(ra, rb), max(ra, rb)
            session.execute(
                update(Record).where((Record.id == other) | (Record.canonical_id == other)).values(canonical_id=root)
            )
            _fill_canonical(session, {root}, {other: root})
        elif not duplicate and ra == rb:
            detail["split_into"] = _split(session, pair)
        pair.status = "merged" if duplicate else "rejected"
        pair.decided_by = actor
        audit(session, "dedupe_judgement", detail, actor=actor)
