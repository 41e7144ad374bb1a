"""Text features: one TF-IDF matrix per project, computed once, plus query similarity for cold start.

The matrix is built from every record's ``title + " " + abstract`` (unsupervised, so it may
see every record's text but no label). Rows are L2-normalised, so a dot product is a cosine.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize

from ..errors import ConfigError

# Boolean operators and PubMed field tags carry no topic; drop them from query text.
QUERY_NOISE = re.compile(r"\[[^\]]*\]|\b(?:AND|OR|NOT)\b|[()\"*]")


@dataclass(frozen=True)
class FeatureConfig:
    """The saved settings of a feature matrix (kept apart from the fitted vectorizer)."""

    ngram_max: int = 1  # word bigrams measured no better on the tuning half, and 3x slower
    min_df: int = 1
    max_df: float = 0.95
    sublinear_tf: bool = True
    stop_words: bool = False
    dtype: str = "float32"
    # Latent semantic columns (truncated SVD of the TF-IDF matrix) appended to the words, so
    # that records about the same thing in other words score alike; 0 turns them off.
    lsa_components: int = 0
    lsa_weight: float = 1.0
    # Title words again as their own columns, scaled by this weight (0 = off): a word in
    # the title says more about what a study is than the same word in the abstract.
    title_weight: float = 0.5

    def vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            stop_words="english" if self.stop_words else None,
            dtype=np.dtype(self.dtype),
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TextFeatures:
    """A fitted TF-IDF space: the matrix of every record, and what is needed to embed new text."""

    matrix: sp.csr_matrix
    vocabulary: dict[str, int]
    idf: np.ndarray
    config: FeatureConfig

    @property
    def words(self) -> sp.csr_matrix:
        """The word TF-IDF columns only (without the title or latent columns)."""
        return self.matrix[:, : len(self.vocabulary)] if self.matrix.shape[1] > len(self.vocabulary) else self.matrix

    def embed(self, text: str) -> sp.csr_matrix:
        """A 1-row L2-normalised vector for free text (a query or criteria) in this space."""
        vec = self.config.vectorizer()
        vec.vocabulary_ = self.vocabulary
        vec.idf_ = self.idf
        return vec.transform([text])

    def to_bytes(self) -> bytes:
        """Serialise without pickle: arrays in one ``.npz``."""
        terms = [""] * len(self.vocabulary)
        for term, col in self.vocabulary.items():
            terms[col] = term
        # one newline-joined UTF-8 blob: tokens never hold a newline, and it stays compact
        blob = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(
            buf,
            data=self.matrix.data,
            indices=self.matrix.indices,
            indptr=self.matrix.indptr,
            shape=np.array(self.matrix.shape),
            idf=self.idf,
            terms=blob,
            config=np.array([repr(sorted(self.config.to_dict().items()))]),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, config: FeatureConfig) -> TextFeatures:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            if str(z["config"][0]) != repr(sorted(config.to_dict().items())):
                raise ConfigError("cached features were built with other settings")
            matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            terms = z["terms"].tobytes().decode("utf-8").split("\n") if z["terms"].size else []
            vocabulary = {t: i for i, t in enumerate(terms)}
            return cls(matrix, vocabulary, z["idf"], config)


def build_features(
    texts: Sequence[str], config: FeatureConfig | None = None, *, titles: Sequence[str] | None = None
) -> TextFeatures:
    """Fit TF-IDF on ``texts`` (and on ``titles`` when weighted) and return the matrix with its vocabulary."""
    config = config or FeatureConfig()
    if len(texts) == 0:
        raise ConfigError("texts: no records to build features from")
    vec = config.vectorizer()
    try:
        matrix = vec.fit_transform(texts)
    except ValueError as e:  # every text empty, or min_df/max_df prune every term
        vec = TfidfVectorizer(**{**vec.get_params(), "min_df": 1, "max_df": 1.0})
        try:
            matrix = vec.fit_transform(texts)
        except ValueError:
            raise ConfigError(f"texts: no words to build features from ({e})") from e
    matrix = sp.csr_matrix(matrix)
    if config.title_weight > 0 and titles is not None:
        matrix = _with_title_columns(matrix, titles, config)
    if config.lsa_components > 0:
        matrix = _with_latent_columns(matrix, config)
    return TextFeatures(matrix, dict(vec.vocabulary_), vec.idf_, config)


def _with_title_columns(words: sp.csr_matrix, titles: Sequence[str], config: FeatureConfig) -> sp.csr_matrix:
    try:
        title_matrix = config.vectorizer().fit_transform([t or "" for t in titles])
    except ValueError:  # no title has a word
        return words
    return normalize(sp.hstack([words, title_matrix * config.title_weight], format="csr")).astype(words.dtype)


def _with_latent_columns(words: sp.csr_matrix, config: FeatureConfig) -> sp.csr_matrix:
    k = min(config.lsa_components, min(words.shape) - 1)
    if k < 1:
        return words
    latent = TruncatedSVD(n_components=k, random_state=0).fit_transform(words)
    latent = normalize(latent) * config.lsa_weight
    return sp.hstack([words, sp.csr_matrix(latent.astype(words.dtype))], format="csr")


def clean_query(text: str) -> str:
    """Strip Boolean operators, field tags and stop words from a search query or criteria text."""
    words = re.findall(r"\w+", QUERY_NOISE.sub(" ", text))
    return " ".join(w for w in words if w.lower() not in ENGLISH_STOP_WORDS)


def query_similarity(features: TextFeatures, texts: Sequence[str]) -> np.ndarray | None:
    """Cosine similarity of every record to the project's topic text; None when there is none."""
    joined = " ".join(clean_query(t) for t in texts if t)
    if not joined.strip():
        return None
    q = features.embed(joined)
    if q.nnz == 0:
        return None
    return np.asarray((features.words @ q.T).todense()).ravel()
