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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DOI_PREFIX = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/)?(?:doi:\s*)?", re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")
NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_doi(doi: str | None) -> str | None:
    """Lower-case DOI without resolver prefix or trailing punctuation, or None."""
    if not doi:
        return None
    value = DOI_PREFIX.sub("", str(doi).strip()).strip().rstrip(".;,")
    value = value.lower()
    return value if value.startswith("10.") and "/" in value else None


def _fold(text: str) -> str:
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


Conflict = Callable[[int, int], bool]
