"""PubMed Boolean queries as concept blocks, for ranking before any include is known.

A systematic-review search is usually ``(terms for A) AND (terms for B) AND ...``: a record is
on topic when it matches every concept, not when it shares many words with the whole query.
:func:`parse_query` reads such a query into its top-level AND-ed blocks (and NOT-ed blocks);
:func:`block_scores` counts, for every record at once, how many blocks it matches;
:func:`boolean_prior` adds the TF-IDF cosine as a tie-break within a block count.

The grammar is PubMed's: operators ``AND``, ``OR``, ``NOT`` in capitals, evaluated left to right
(PubMed has no precedence: ``a OR b AND c`` is ``(a OR b) AND c``), parentheses, quoted phrases,
truncation ``*``, field tags ``[tiab]``, ``[mh]``... Adjacent terms without an operator are one
term that needs all its words. User text never raises: stray or missing parentheses, dangling
operators and unknown tags are read as well as they can be; text with neither an operator nor a
field tag is not a Boolean query (None).

Matching is on lower-cased word tokens. Word presence comes from the feature matrices' token
counts (one sparse product for every word of the query); a phrase is first narrowed to the
records holding all its words, then checked as consecutive words with a regex on those records'
text only. MeSH and publication-type tags also match the record's subject headings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from .features import TextFeatures, query_similarity, zscore

# Deeper parentheses than this are read as if absent (no recursion limit on hostile input).
MAX_DEPTH = 50
# The cosine tie-break is scaled below one block, so block counts always dominate.
TIE_WEIGHT = 0.5
# A query needs this many AND-ed blocks before block scoring replaces the plain cosine.
MIN_BLOCKS = 2
# Weight of the inclusion prior's z-score beside the topic cosine's before the first include,
# beside the TF-IDF cosine and beside the sentence-embedding cosine; chosen by nested
# leave-one-review-out cross-validation (docs/ranking.md, tenth round).
INCLUSION_WEIGHT = 2.0
INCLUSION_WEIGHT_SEMANTIC = 1.0

# "(", ")", a quoted phrase, a field tag, an unclosed "[" with what sticks to it (skipped), a bare word
_LEX = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<q>[^"]*)"|\[(?P<tag>[^\][()"]*)\]|(?P<junk>\[[^\s\]]*)|(?P<w>[^\s()\["]+))'
)
_OPERATORS = {"AND", "OR", "NOT"}
_COMBINING = re.compile(r"[\u0300-\u036f]+")
# Tags whose terms are searched in the title and abstract.
_TEXT_TAGS = {
    "",
    "tiab",
    "title/abstract",
    "ab",
    "abstract",
    "tw",
    "text word",
    "all",
    "all fields",
    "ot",
    "other term",
    "kw",
    "keyword",
    "keywords",
}
_TITLE_TAGS = {"ti", "title"}
# Controlled vocabulary: matched in the record's MeSH terms / publication types as well as its text.
_SUBJECT_TAGS = {
    "mh",
    "mesh",
    "mesh terms",
    "majr",
    "mesh major topic",
    "sh",
    "subheading",
    "nm",
    "supplementary concept",
    "pt",
    "publication type",
    "rn",
    "tn",
}


def normalise(text: str) -> str:
    """Lower-cased, accents folded: the form both query words and record text are compared in."""
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))


@dataclass(frozen=True)
class Term:
    """One search term: its words (each maybe truncated), whether they must be consecutive, where to look."""

    words: tuple[tuple[str, bool], ...]  # (word, truncated)
    phrase: bool
    field: str  # "text", "title" or "subject"

    def pattern(self) -> re.Pattern[str]:
        """A regex for the words in order, separated by non-word characters (applied to normalised text)."""
        parts = [re.escape(w) + (r"\w*" if cut else r"\b") for w, cut in self.words]
        return re.compile(r"\b" + r"\W+".join(parts))


@dataclass(frozen=True)
class Node:
    """``op`` is "and", "or" or "not" (``children[0]`` NOT the rest)."""

    op: str
    children: tuple[Node | Term, ...]


Expr = Node | Term


@dataclass(frozen=True)
class BooleanQuery:
    """A query's top-level AND-ed concept blocks, and the blocks NOT-ed out of it."""

    blocks: tuple[Expr, ...]
    excluded: tuple[Expr, ...] = ()

    def terms(self) -> list[Term]:
        return [t for block in self.blocks + self.excluded for t in _terms(block)]

    def sentence(self) -> str:
        """The wanted concepts as plain text for a sentence-embedding model, one clause per
        block ("psilocybin or lsd; cluster headache or migraine"); the NOT-ed blocks left out,
        as an embedding cannot say "not"."""
        clauses = (" or ".join(" ".join(w for w, _ in t.words) for t in _terms(block)) for block in self.blocks)
        return "; ".join(c for c in clauses if c)


def _terms(expr: Expr) -> list[Term]:
    if isinstance(expr, Term):
        return [expr]
    return [t for child in expr.children for t in _terms(child)]


# ---- parsing ----------------------------------------------------------------------------------


def _make_term(text: str, quoted: bool, tag: str | None) -> Term | None:
    """A term from its text and tag; None for one that says nothing of the topic (``2020[dp]``, ``smith j[au]``)."""
    name = normalise(tag or "").strip()
    base, _, option = name.partition(":")
    base = base.strip()
    if base in _TEXT_TAGS:
        field = "text"
    elif base in _TITLE_TAGS:
        field = "title"
    elif base in _SUBJECT_TAGS:
        field = "subject"
    else:
        return None
    words = []
    for match in re.finditer(r"(\w+)(\*)?", normalise(text)):
        words.append((match.group(1), bool(match.group(2))))
    if not words:
        return None
    proximity = "~" in option
    phrase = len(words) > 1 and (quoted or tag is not None) and not proximity
    return Term(tuple(words), phrase, field)


def _lex(text: str) -> list[tuple[str, object]]:
    """Tokens: ("(",), (")",), ("op", "AND"), ("term", Term | None). Adjacent bare words form one term."""
    raw = [m for m in _LEX.finditer(text) if m.lastgroup]
    tokens: list[tuple[str, object]] = []
    i = 0
    while i < len(raw):
        m = raw[i]
        kind = m.lastgroup
        if kind in ("lp", "rp"):
            tokens.append((m.group(kind), None))
            i += 1
        elif kind == "w" and m.group("w") in _OPERATORS:
            tokens.append(("op", m.group("w")))
            i += 1
        elif kind in ("tag", "junk"):  # a tag with no term before it, or an unclosed one
            i += 1
        else:
            quoted = kind == "q"
            parts = [m.group(kind)]
            i += 1
            while not quoted and i < len(raw) and raw[i].lastgroup == "w" and raw[i].group("w") not in _OPERATORS:
                parts.append(raw[i].group("w"))
                i += 1
            tag = None
            if i < len(raw) and raw[i].lastgroup == "tag":
                tag = raw[i].group("tag")
                i += 1
            tokens.append(("term", _make_term(" ".join(parts), quoted, tag)))
    return tokens


class _Parser:
    """Recursive descent over the tokens, left to right as PubMed reads them; never raises."""

    def __init__(self, tokens: list[tuple[str, object]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def parse(self) -> Expr | None:
        result = None
        while self.pos < len(self.tokens):  # a stray ")" ends a sequence early: go on after it
            part = self.sequence(0)
            result = _combine("AND", result, part)
            if self.peek() == ")":
                self.pos += 1
        return result

    def sequence(self, depth: int) -> Expr | None:
        left = self.unit(depth)
        while self.peek() not in (None, ")"):
            op = "AND"  # no operator between two terms: PubMed ANDs them
            while self.peek() == "op":  # "a AND OR b": the last operator wins
                op = str(self.tokens[self.pos][1])
                self.pos += 1
            if self.peek() in (None, ")"):  # dangling operator
                break
            left = _combine(op, left, self.unit(depth))
        return left

    def unit(self, depth: int) -> Expr | None:
        kind = self.peek()
        if kind == "(":
            self.pos += 1
            if depth >= MAX_DEPTH:  # too deep: read on as if these parentheses were not there
                while self.peek() == "(":
                    self.pos += 1
                return self.unit(depth)
            inner = self.sequence(depth + 1)
            if self.peek() == ")":
                self.pos += 1
            return inner
        if kind == "op":  # an operator with nothing before it
            self.pos += 1
            return None
        if kind == "term":
            term = self.tokens[self.pos][1]
            self.pos += 1
            return term  # type: ignore[return-value]
        return None


def _combine(op: str, left: Expr | None, right: Expr | None) -> Expr | None:
    """``left op right``, flattening runs of one operator; a missing side drops out (NOT of nothing is nothing)."""
    if right is None:
        return left
    if left is None:
        return None if op == "NOT" else right
    kind = op.lower()
    if kind == "not":
        return Node("not", (left, right))
    parts = (*_flat(kind, left), *_flat(kind, right))
    return Node(kind, parts)


def _flat(kind: str, expr: Expr) -> tuple[Expr, ...]:
    return expr.children if isinstance(expr, Node) and expr.op == kind else (expr,)


def _blocks(expr: Expr) -> tuple[list[Expr], list[Expr]]:
    """The AND-ed blocks of an expression and what is NOT-ed out at the top level."""
    if isinstance(expr, Node) and expr.op == "and":
        pos, neg = [], []
        for child in expr.children:
            p, n = _blocks(child)
            pos += p
            neg += n
        return pos, neg
    if isinstance(expr, Node) and expr.op == "not":
        pos, neg = _blocks(expr.children[0])
        return pos, neg + list(expr.children[1:])
    return [expr], []


def parse_query(text: object) -> BooleanQuery | None:
    """The concept blocks of a PubMed Boolean query; None for plain text, an empty or an unreadable query."""
    if not isinstance(text, str) or not text.strip():
        return None
    if not (re.search(r"\b(?:AND|OR|NOT)\b", text) or re.search(r"\[[^\]]+\]", text)):
        return None
    if text.count('"') % 2:  # an unclosed quote: read as if the last quote were not there
        cut = text.rindex('"')
        text = text[:cut] + " " + text[cut + 1 :]
    root = _Parser(_lex(text)).parse()
    if root is None:
        return None
    blocks, excluded = _blocks(root)
    return BooleanQuery(tuple(blocks), tuple(excluded)) if blocks else None


def concept_query(text: object, min_blocks: int = MIN_BLOCKS) -> BooleanQuery | None:
    """The query when it has at least ``min_blocks`` concept blocks (what block scoring needs), else None."""
    query = parse_query(text)
    return query if query is not None and len(query.blocks) >= min_blocks else None


# ---- matching ---------------------------------------------------------------------------------


class RecordIndex:
    """What terms are matched against: the features' word counts, record text on demand, subject headings.

    ``text_of(rows)`` gives the ``title + " " + abstract`` of those rows (for phrase checks, only on
    records that hold all of a phrase's words); ``subjects`` one string of MeSH terms and publication
    types per record. Without them phrases match as bags of words and subject tags match text only.
    """

    def __init__(
        self,
        features: TextFeatures,
        *,
        text_of: Callable[[np.ndarray], Sequence[str]] | None = None,
        subjects: Sequence[str] | None = None,
    ) -> None:
        self.counts = features.counts
        self.n = features.matrix.shape[0]
        self.text_of = text_of
        self.subjects = subjects
        self._columns: dict[str, list[int]] = {}
        for i, w in enumerate(self.counts.words):
            self._columns.setdefault(normalise(w), []).append(i)
        self._presence: dict[tuple[str, str, bool], np.ndarray] = {}
        self._loaded: set[tuple[str, bool]] = set()
        self._texts: dict[int, str] = {}
        self._subjects: list[str] | None = None

    def columns(self, word: str, truncated: bool) -> list[int]:
        """Word columns for a query word: itself, or every word it begins when truncated."""
        if truncated:
            return [i for w, cols in self._columns.items() if w.startswith(word) for i in cols]
        return self._columns.get(word, [])

    def load(self, terms: Sequence[Term]) -> None:
        """Which records hold each query word (a truncated one: any word it begins), in one product per source."""
        keys = sorted({(w, cut) for t in terms for w, cut in t.words if (len(w) > 1 or cut)} - self._loaded)
        if not keys:
            return
        columns = [self.columns(w, cut) for w, cut in keys]
        rows = [c for cols in columns for c in cols]
        which = [k for k, cols in enumerate(columns) for _ in cols]
        pick = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, which)), shape=(len(self.counts.words), len(keys))
        )
        mapped = self.counts.word_map @ pick  # whitespace token x query word
        for source, counts in (("text", self.counts.text), ("title", self.counts.title)):
            present = sp.csc_matrix(counts @ mapped)
            for j, key in enumerate(keys):
                hit = np.zeros(self.n, dtype=bool)
                hit[present.indices[present.indptr[j] : present.indptr[j + 1]]] = True
                self._presence[(source, *key)] = hit
        self._loaded.update(keys)

    def word(self, source: str, word: str, truncated: bool) -> np.ndarray | None:
        """Records holding the word; None when the word is too short to be a column (no narrowing)."""
        if len(word) < 2 and not truncated:
            return None
        if (word, truncated) not in self._loaded:
            self.load([Term(((word, truncated),), False, "text")])
        return self._presence[(source, word, truncated)]

    def match(self, term: Term) -> np.ndarray:
        source = "title" if term.field == "title" else "text"
        hit = np.ones(self.n, dtype=bool)
        narrowed = False
        for w, cut in term.words:
            present = self.word(source, w, cut)
            if present is not None:
                hit &= present
                narrowed = True
        if (term.phrase or not narrowed) and self.text_of is not None:
            hit = self._check(term, np.flatnonzero(hit))
        elif not narrowed:
            hit[:] = False
        if term.field == "subject" and self.subjects is not None:
            if self._subjects is None:
                self._subjects = [normalise(s) if s else "" for s in self.subjects]
            pattern = term.pattern()
            hit |= np.fromiter((bool(s) and pattern.search(s) is not None for s in self._subjects), bool, self.n)
        return hit

    def _check(self, term: Term, rows: np.ndarray) -> np.ndarray:
        """The rows whose text holds the term's words in order (each record's text fetched and normalised once)."""
        hit = np.zeros(self.n, dtype=bool)
        missing = np.asarray([r for r in rows.tolist() if r not in self._texts], dtype=np.int64)
        if missing.size and self.text_of is not None:
            self._texts.update(zip(missing.tolist(), map(normalise, self.text_of(missing)), strict=True))
        pattern = term.pattern()
        hit[rows] = np.fromiter((pattern.search(self._texts[r]) is not None for r in rows.tolist()), bool, rows.size)
        return hit

    def evaluate(self, expr: Expr) -> np.ndarray:
        if isinstance(expr, Term):
            return self.match(expr)
        parts = [self.evaluate(c) for c in expr.children]
        if expr.op == "and":
            return np.logical_and.reduce(parts)
        if expr.op == "or":
            return np.logical_or.reduce(parts)
        return parts[0] & ~np.logical_or.reduce(parts[1:])


def block_matches(query: BooleanQuery, index: RecordIndex) -> tuple[np.ndarray, np.ndarray]:
    """(records x blocks, records x NOT-blocks) boolean matrices."""
    index.load(query.terms())
    n = index.n
    pos = np.column_stack([index.evaluate(b) for b in query.blocks]) if query.blocks else np.zeros((n, 0), bool)
    neg = np.column_stack([index.evaluate(b) for b in query.excluded]) if query.excluded else np.zeros((n, 0), bool)
    return pos, neg


def block_scores(query: BooleanQuery, index: RecordIndex) -> np.ndarray:
    """Blocks matched minus NOT-blocks matched, per record: every concept present ranks first."""
    pos, neg = block_matches(query, index)
    return pos.sum(axis=1).astype(np.float64) - neg.sum(axis=1)


def boolean_prior(query: BooleanQuery, index: RecordIndex, cosine: np.ndarray | None) -> np.ndarray:
    """Block score plus the cosine to the topic text (scaled under one block) to order records within a count."""
    scores = block_scores(query, index)
    if cosine is not None:
        scores += TIE_WEIGHT * np.clip(np.asarray(cosine, dtype=np.float64), 0.0, 1.0)
    return scores


def cold_start_scores(
    features: TextFeatures,
    topic_texts: Sequence[str],
    query: BooleanQuery | None,
    index: Callable[[], RecordIndex],
    semantic: np.ndarray | None = None,
    inclusion: np.ndarray | None = None,
    inclusion_weight: float | None = None,
) -> np.ndarray | None:
    """The prior before any include: blocks of ``query`` (when given) over the cosine to the topic, else the cosine.

    ``semantic`` (the cosine of each record's sentence embedding to the topic's, when the
    project uses embeddings) replaces the TF-IDF cosine: it found the first include sooner
    on the suite (docs/ranking.md, seventh round). ``inclusion`` (an
    :class:`~screening.ranking.inclusion.InclusionPrior`'s scores: what reviews include,
    whatever the topic) is added as z-scores at ``inclusion_weight`` (by default
    ``INCLUSION_WEIGHT``, or ``INCLUSION_WEIGHT_SEMANTIC`` beside ``semantic``). Without
    topic text there is no prior (None). ``index`` is called only when there is a query, so a
    project without one reads no extra columns.
    """
    cosine = query_similarity(features, topic_texts) if semantic is None else semantic
    if inclusion_weight is None:
        inclusion_weight = INCLUSION_WEIGHT if semantic is None else INCLUSION_WEIGHT_SEMANTIC
    if cosine is not None and inclusion is not None and inclusion_weight > 0:
        fused = zscore(cosine) + inclusion_weight * zscore(inclusion)
        if query is None:
            return fused
        # a tie-break inside a block count must stay in [0, 1]: the fused score's quantile
        cosine = (rankdata(fused) - 1) / max(len(fused) - 1, 1)
    if query is None:
        return cosine
    return boolean_prior(query, index(), cosine)
