"""Text features: computed once per project from the records' text, plus query similarity for cold start.

Every record's ``title + " " + abstract`` is split on whitespace once (the costly, Python-level
step; its counts are what the project cache stores). Everything else is derived from those
counts with sparse products:

* ``matrix``: word TF-IDF (the words found by scikit-learn's default token pattern inside each
  whitespace token, so exactly what ``TfidfVectorizer`` gives), plus the title's own word
  columns scaled by ``title_weight``; rows L2-normalised, so a dot product is a cosine. Used for
  similarity: cold start, the includes' centroid, the nearest include.
* ``model_matrix``: ``matrix`` stacked with character n-gram TF-IDF (``char_wb``: n-grams inside
  each whitespace token, padded with spaces, exactly as ``TfidfVectorizer(analyzer="char_wb")``),
  rows re-normalised. The classifier learns on it: n-grams tie "opioid", "opioids" and
  "opiates" together, which helps when only a handful of includes are known.
* ``phrase_matrix`` (``FeatureConfig.phrases``; by default ``"joint"``): words and word bigrams
  in one TF-IDF vocabulary, as ASReview's elas_u4 reads them, for the second SVM.

Both are unsupervised: they may see every record's text but no label.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import chain

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from ..errors import ConfigError

# Boolean operators and PubMed field tags carry no topic; drop them from query text.
QUERY_NOISE = re.compile(r"\[[^\]]*\]|\b(?:AND|OR|NOT)\b|[()\"*]")
# scikit-learn's default token pattern: words of two or more word characters.
WORD = re.compile(r"(?u)\b\w\w+\b")
PHRASE_MATRICES = ("off", "stacked", "joint")


@dataclass(frozen=True)
class FeatureConfig:
    """The saved settings of a feature matrix (kept apart from the fitted vectorizer)."""

    min_df: int = 1
    max_df: float = 0.95
    sublinear_tf: bool = True
    stop_words: bool = False
    dtype: str = "float32"
    # Title words again as their own columns, scaled by this weight (0 = off): a word in
    # the title says more about what a study is than the same word in the abstract.
    title_weight: float = 0.5
    # Character n-grams for the classifier (char_min_n = 0 turns them off). 4-grams that
    # occur in at least 2 and at most half of the records measured best (docs/ranking.md).
    char_min_n: int = 4
    char_max_n: int = 4
    char_min_df: int = 2
    char_max_df: float = 0.5
    # Word bigrams (pairs of adjacent words, as ``TfidfVectorizer(ngram_range=(2, 2))``) as a
    # third block of the classifier's matrix, kept when in at least ``bigram_min_df`` records
    # and at most ``char_max_df`` of them, scaled by ``bigram_weight`` beside the word and
    # character blocks (off by default; docs/ranking.md).
    word_bigrams: bool = False
    bigram_min_df: int = 2
    bigram_weight: float = 1.0
    # A third matrix, for a side model (``LearnerConfig.phrase_weight``): words and word
    # bigrams without character n-grams, so the two models err differently. "off"; "stacked":
    # the word (+title) matrix with the bigram block beside it (docs/ranking.md, seventh round);
    # "joint": words and bigrams of the text in one TF-IDF vocabulary, no title columns, exactly
    # ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, max_df=max_df)``:
    # the features of ASReview's elas_u4 (eighth round; the default).
    phrases: str = "joint"

    def __post_init__(self) -> None:
        if self.phrases not in PHRASE_MATRICES:
            raise ConfigError(f"phrases: must be one of {', '.join(PHRASE_MATRICES)}, got {self.phrases!r}")

    @property
    def uses_bigrams(self) -> bool:
        """Whether word bigrams are counted: for the model matrix or the phrase matrix."""
        return self.word_bigrams or self.phrases != "off"

    def vectorizer(self) -> TfidfVectorizer:
        """A word vectorizer with these settings (fitted ones get ``vocabulary_`` and ``idf_``)."""
        return TfidfVectorizer(
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            stop_words="english" if self.stop_words else None,
            dtype=np.dtype(self.dtype),
        )

    def to_dict(self) -> dict[str, object]:
        """The settings; the bigram ones only when bigrams are used, so caches keyed on the
        settings of earlier versions stay valid."""
        settings = asdict(self)
        if self.phrases == "off":
            del settings["phrases"]
        if not self.uses_bigrams:
            for name in ("word_bigrams", "bigram_min_df", "bigram_weight"):
                del settings[name]
        return settings


@dataclass
class TokenCounts:
    """What the feature cache stores: the costly Python-level part of building features.

    ``text`` and ``title`` count each record's lower-cased whitespace tokens; ``word_map`` and
    ``char_map`` say which words and character n-grams each token holds (``words`` names the
    word columns). The TF-IDF matrices follow from these with sparse products.
    """

    text: sp.csr_matrix
    title: sp.csr_matrix
    word_map: sp.csr_matrix
    words: list[str]
    char_map: sp.csr_matrix | None
    bigrams: sp.csr_matrix | None = None  # (record x word bigram) counts, with ``uses_bigrams``


@dataclass
class TextFeatures:
    """The fitted feature space of a set of records, and what is needed to embed new text."""

    matrix: sp.csr_matrix
    model_matrix: sp.csr_matrix
    vocabulary: dict[str, int]
    idf: np.ndarray
    config: FeatureConfig
    counts: TokenCounts
    phrase_matrix: sp.csr_matrix | None = None  # with ``FeatureConfig.phrases``

    @property
    def words(self) -> sp.csr_matrix:
        """The word TF-IDF columns only (without the title columns)."""
        return self.matrix[:, : len(self.vocabulary)]

    def embed(self, text: str) -> sp.csr_matrix:
        """A 1-row L2-normalised vector for free text (a query or criteria) in the word space."""
        vec = self.config.vectorizer()
        vec.vocabulary_ = self.vocabulary
        vec.idf_ = self.idf
        return vec.transform([text])

    def to_bytes(self) -> bytes:
        """Serialise the token counts and maps without pickle (one ``.npz``); the rest is derived on load."""
        c = self.counts
        # one newline-joined UTF-8 blob: words never hold a newline
        blob = np.frombuffer("\n".join(c.words).encode("utf-8"), dtype=np.uint8)
        arrays = {"words": blob, "config": np.array([_config_key(self.config)])}
        named = (("text", c.text), ("title", c.title), ("word_map", c.word_map), ("char_map", c.char_map))
        for name, m in (*named, ("bigrams", c.bigrams)):
            if m is not None:
                arrays.update(_csr_arrays(name, m))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, config: FeatureConfig) -> TextFeatures:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            if str(z["config"][0]) != _config_key(config):
                raise ConfigError("cached features were built with other settings")
            text, title, word_map = (_csr_from(z, name) for name in ("text", "title", "word_map"))
            char_map = _csr_from(z, "char_map") if "char_map_shape" in z.files else None
            bigrams = _csr_from(z, "bigrams") if "bigrams_shape" in z.files else None
            words = z["words"].tobytes().decode("utf-8").split("\n") if z["words"].size else []
        return derive_features(TokenCounts(text, title, word_map, words, char_map, bigrams), config)


def _csr_arrays(name: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    # counts are small whole numbers: 2 bytes each instead of 4
    data = m.data.astype(np.uint16) if m.data.size and m.data.max() < 65536 else m.data
    return {
        f"{name}_data": data,
        f"{name}_indices": m.indices,
        f"{name}_indptr": m.indptr,
        f"{name}_shape": np.array(m.shape),
    }


def _csr_from(arrays, name: str) -> sp.csr_matrix:
    parts = (arrays[f"{name}_data"].astype(np.float32), arrays[f"{name}_indices"], arrays[f"{name}_indptr"])
    return sp.csr_matrix(parts, shape=tuple(arrays[f"{name}_shape"]))


def _config_key(config: FeatureConfig) -> str:
    return repr(sorted(config.to_dict().items()))


def count_tokens(
    texts: Sequence[str], titles: Sequence[str] | None = None, config: FeatureConfig | None = None
) -> TokenCounts:
    """Count the lower-cased whitespace tokens of ``texts`` (and ``titles``) and map them to words and n-grams.

    Each text is split once: the token counts, the words inside each token and (with
    bigrams) the sequence of words, from which adjacent pairs are counted, all come from
    that one split.
    """
    config = config or FeatureConfig()
    tokens = _Tokens.of(texts)
    if tokens.terms.size == 0:
        raise ConfigError("texts: no words to build features from (every text is empty)")
    text = tokens.counts()
    if titles is None:
        title = sp.csr_matrix(text.shape, dtype=np.float32)
    else:
        title = _Tokens.of([t or "" for t in titles]).counts(vocabulary=tokens.terms)
    terms = tokens.terms.tolist()
    word_map, words, parts = _term_map(terms, WORD.findall)
    bigrams = None
    if config.uses_bigrams:
        # the joint phrase matrix keeps every bigram; the bigram block's min_df is applied when deriving
        min_df = 1 if config.phrases == "joint" else config.bigram_min_df
        bigrams = _count_pairs(*tokens.words(parts), len(texts), min_df)
    if config.stop_words:
        kept = [i for i, w in enumerate(words) if w not in ENGLISH_STOP_WORDS]
        word_map, words = sp.csr_matrix(word_map[:, kept]), [words[i] for i in kept]
    char_map = None
    if config.char_min_n > 0:
        ngrams = (config.char_min_n, max(config.char_min_n, config.char_max_n))
        char_map, _, _ = _term_map(terms, TfidfVectorizer(analyzer="char_wb", ngram_range=ngrams).build_analyzer())
    return TokenCounts(text, title, word_map, words, char_map, bigrams)


@dataclass
class _Tokens:
    """The lower-cased whitespace tokens of some texts, in order: each one's record and term."""

    record: np.ndarray  # the record of each token
    code: np.ndarray  # its term, an index into ``terms``
    terms: np.ndarray  # the distinct tokens, sorted as ``CountVectorizer`` sorts its vocabulary
    n_records: int

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Tokens:
        found = [t.lower().split() for t in texts]
        lengths = np.fromiter(map(len, found), np.int64, count=len(found))
        flat = np.array(list(chain.from_iterable(found)), dtype=object)
        code, terms = pd.factorize(flat, sort=True) if flat.size else (np.zeros(0, np.int64), np.zeros(0, object))
        return cls(np.repeat(np.arange(len(found)), lengths), code, np.asarray(terms, dtype=object), len(found))

    def counts(self, vocabulary: np.ndarray | None = None) -> sp.csr_matrix:
        """(record x term) counts, over ``vocabulary`` (other tokens dropped) or this text's own terms."""
        record, code, width = self.record, self.code, self.terms.size
        if vocabulary is not None:
            code = pd.Index(vocabulary).get_indexer(self.terms)[code] if code.size else code
            record, code, width = record[code >= 0], code[code >= 0], vocabulary.size
        ones = np.ones(code.size, dtype=np.float32)
        matrix = sp.csr_matrix((ones, (record, code)), shape=(self.n_records, width), dtype=np.float32)
        matrix.sum_duplicates()
        return matrix

    def words(self, parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The words of every text in order, and the record of each, from each term's words ``parts``."""
        offsets, ids = parts
        per_token = np.diff(offsets)[self.code]
        first = np.repeat(offsets[self.code] - (np.cumsum(per_token) - per_token), per_token)
        return ids[first + np.arange(first.size)], np.repeat(self.record, per_token)


def count_bigrams(texts: Sequence[str], min_df: int = 1) -> sp.csr_matrix | None:
    """(record x word bigram) counts: the pairs of adjacent words ``CountVectorizer(ngram_range=(2, 2))``
    counts, in another column order; None when no bigram is in ``min_df`` records.

    The texts are split on whitespace once (the only Python-level loop), the words of each
    distinct token found by one regular expression, and the pairs coded, counted and pruned
    with numpy: faster than the vectorizer, which joins every pair into a string.
    """
    tokens = _Tokens.of(texts)
    _, _, parts = _term_map(tokens.terms.tolist(), WORD.findall)
    return _count_pairs(*tokens.words(parts), len(texts), min_df)


def _count_pairs(word: np.ndarray, record: np.ndarray, n_records: int, min_df: int) -> sp.csr_matrix | None:
    """Counts of adjacent ``word`` pairs within each record; columns in the order the pairs' codes sort."""
    if word.size < 2:
        return None
    codes, distinct = pd.factorize(word)  # numbered by first appearance, as the words themselves would be
    within = record[:-1] == record[1:]  # a pair never spans two records
    pair = codes[:-1][within].astype(np.int64) * len(distinct) + codes[1:][within]
    pairs, cols = np.unique(pair, return_inverse=True)
    counts = sp.csr_matrix(
        (np.ones(cols.size, dtype=np.float32), (record[:-1][within], cols)),
        shape=(n_records, pairs.size),
        dtype=np.float32,
    )
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=pairs.size)
    kept = np.flatnonzero(df >= max(1, min_df))
    if kept.size == 0:
        return None
    return counts if kept.size == pairs.size else sp.csr_matrix(counts[:, kept])


def _term_map(terms: Sequence[str], split) -> tuple[sp.csr_matrix, list[str], tuple[np.ndarray, np.ndarray]]:
    """A (token x part) count matrix: how often each part occurs in each whitespace token.

    Also each token's parts in order, as offsets into one array of part ids (token ``i``'s
    parts are ``ids[offsets[i]:offsets[i + 1]]``).
    """
    index: dict[str, int] = {}
    rows, cols = [], []
    for row, term in enumerate(terms):
        for part in split(term):
            rows.append(row)
            cols.append(index.setdefault(part, len(index)))
    row_ids, ids = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    data = np.ones(len(rows), dtype=np.float32)
    mapping = sp.csr_matrix((data, (row_ids, ids)), shape=(len(terms), len(index)))
    mapping.sum_duplicates()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(row_ids, minlength=len(terms)))])
    return mapping, list(index), (offsets, ids)


def _tfidf(
    counts: sp.csr_matrix, min_df: float, max_df: float, sublinear: bool
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """TF-IDF of the columns whose document frequency is within bounds, as ``TfidfVectorizer`` computes it.

    Works in place on ``counts`` (a fresh product). Returns the L2-normalised matrix of the kept
    columns, their indices among ``counts``' columns, and their IDF.
    """
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    low = min_df if isinstance(min_df, int) else min_df * n
    high = max_df if isinstance(max_df, int) else max_df * n
    keep = np.flatnonzero((df >= max(low, 1)) & (df <= high))
    if keep.size < counts.shape[1]:
        counts, df = sp.csr_matrix(counts[:, keep]), df[keep]
    if keep.size == 0:  # e.g. a one-record project: every term is in more than max_df of it
        return counts, keep, np.zeros(0)
    idf = np.log((1 + n) / (1 + df)) + 1  # smooth IDF, scikit-learn's default
    if sublinear:
        np.log(counts.data, out=counts.data)
        counts.data += 1
    counts.data *= idf[counts.indices].astype(counts.dtype)
    inplace_csr_row_normalize_l2(counts)
    return counts, keep, idf


def _stack(blocks: Sequence[sp.csr_matrix], dtype: np.dtype) -> sp.csr_matrix:
    """Columns side by side, rows re-normalised to unit length."""
    both = sp.csr_matrix(sp.hstack(list(blocks), format="csr"), dtype=dtype)
    inplace_csr_row_normalize_l2(both)
    return both


def derive_features(counts: TokenCounts, config: FeatureConfig | None = None) -> TextFeatures:
    """Word, title and character TF-IDF matrices from token counts (no Python loop over records).

    The character map is pruned to the n-grams kept, so a cached copy derives faster.
    """
    config = config or FeatureConfig()
    dtype = np.dtype(config.dtype)
    word_counts = counts.text @ counts.word_map  # _tfidf works in place: each use takes a copy
    word_matrix, keep, idf = _tfidf(word_counts.copy(), config.min_df, config.max_df, config.sublinear_tf)
    if keep.size == 0:  # min_df/max_df prune every word: keep them all rather than fail
        word_matrix, keep, idf = _tfidf(word_counts.copy(), 1, 1.0, config.sublinear_tf)
    if keep.size == 0:
        raise ConfigError("texts: no words to build features from")
    vocabulary = {counts.words[c]: i for i, c in enumerate(keep)}
    matrix = sp.csr_matrix(word_matrix, dtype=dtype)
    title_counts = counts.title @ counts.word_map
    if config.title_weight > 0 and title_counts.nnz:
        title_matrix, title_keep, _ = _tfidf(title_counts, config.min_df, config.max_df, config.sublinear_tf)
        if title_keep.size:
            matrix = _stack([word_matrix, title_matrix * config.title_weight], dtype)
    blocks = [matrix]  # of the model matrix, each of unit row length
    if counts.char_map is not None:
        chars, keep_chars, _ = _tfidf(
            counts.text @ counts.char_map, config.char_min_df, config.char_max_df, config.sublinear_tf
        )
        counts.char_map = sp.csr_matrix(counts.char_map[:, keep_chars])
        if keep_chars.size:
            blocks.append(chars)
    pairs = None
    if config.uses_bigrams and counts.bigrams is not None and counts.bigrams.shape[1]:
        pairs, keep_pairs, _ = _tfidf(
            sp.csr_matrix(counts.bigrams, copy=True), config.bigram_min_df, config.char_max_df, config.sublinear_tf
        )
        pairs = pairs * config.bigram_weight if keep_pairs.size else None
    if config.word_bigrams and pairs is not None:
        blocks.append(pairs)
    model_matrix = matrix if len(blocks) == 1 else _stack(blocks, dtype)
    phrase_matrix = None
    if config.phrases == "stacked":
        phrase_matrix = matrix if pairs is None else _stack([matrix, pairs], dtype)
    elif config.phrases == "joint":
        phrase_matrix = _joint_phrases(word_counts, counts.bigrams, config, dtype)
        phrase_matrix = matrix if phrase_matrix is None else phrase_matrix
    return TextFeatures(matrix, model_matrix, vocabulary, idf.astype(np.float64), config, counts, phrase_matrix)


def _joint_phrases(
    words: sp.csr_matrix, bigrams: sp.csr_matrix | None, config: FeatureConfig, dtype: np.dtype
) -> sp.csr_matrix | None:
    """Words and word bigrams in one TF-IDF vocabulary, as ``TfidfVectorizer(ngram_range=(1, 2))``
    (None when ``min_df``/``max_df`` prune every column)."""
    joint = words.copy() if bigrams is None else sp.hstack([words, bigrams], format="csr")  # _tfidf is in place
    phrases, keep, _ = _tfidf(sp.csr_matrix(joint, dtype=dtype), config.min_df, config.max_df, config.sublinear_tf)
    return phrases if keep.size else None


def build_features(
    texts: Sequence[str], config: FeatureConfig | None = None, *, titles: Sequence[str] | None = None
) -> TextFeatures:
    """Count the tokens of ``texts`` (and ``titles``) and derive every feature matrix from them."""
    if len(texts) == 0:
        raise ConfigError("texts: no records to build features from")
    return derive_features(count_tokens(texts, titles, config), config)


def clean_query(text: str) -> str:
    """Strip Boolean operators, field tags and stop words from a search query or criteria text."""
    words = re.findall(r"\w+", QUERY_NOISE.sub(" ", text))
    return " ".join(w for w in words if w.lower() not in ENGLISH_STOP_WORDS)


def topic_sentence(texts: Sequence[str]) -> str:
    """The topic texts as one sentence for a sentence-embedding model: Boolean operators,
    field tags and truncation marks dropped, the words (stop words too) kept in order."""
    parts = (" ".join(QUERY_NOISE.sub(" ", t).split()) for t in texts if t)
    return ". ".join(p for p in parts if p)


def query_similarity(features: TextFeatures, texts: Sequence[str]) -> np.ndarray | None:
    """Cosine similarity of every record to the project's topic text; None when there is none."""
    joined = " ".join(clean_query(t) for t in texts if t)
    if not joined.strip():
        return None
    q = features.embed(joined)
    if q.nnz == 0:
        return None
    return np.asarray((features.words @ q.T).todense()).ravel()


def zscore(values: np.ndarray) -> np.ndarray:
    """Mean 0 and standard deviation 1 (all zeros when the values are all equal): scores of
    different models and priors are added on this scale."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)
