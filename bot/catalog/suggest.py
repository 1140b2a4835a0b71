""""Did you mean": close catalog names for a query that found nothing, fast at 100k names.

Scoring every name with rapidfuzz costs ~50 ms at 100k, so a trigram index picks at most
`CANDIDATES` names first and only those are scored: WRatio (copes with partial names like
`paymnt`), ties broken by plain ratio, then by name.

Picking the candidates is a few passes over one count per name (numpy), and each pass matters:
- Trigrams found in more than a quarter of the names (`er-` is in two thirds of the synthetic
  100k catalog) say almost nothing about which name is meant, yet they are half the postings to
  count, so they are not counted (unless the query has no other).
- Most names share a trigram or two with the query, so the counts are almost all ties, where
  `np.argpartition` degrades (p99 6–8 ms at 100k, more than everything else together). Instead, a
  binary search over the count levels finds the highest level that `CANDIDATES` names reach
  (comparisons on a uint8 copy: an eighth of the memory to read); every name above that level is
  taken, and at that last level, the names closest in length to the query (a typo changes the
  length by a character or two), then the first in alphabetical order, so ties are deterministic.
- The name meant is almost always among the very first by count, so the cap loses nothing.
  Scores tied at the `limit`-th place are all kept before the plain-ratio tie-break, so which
  candidates reach the scorer in which order does not change the answer.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np
from rapidfuzz import fuzz, process

CANDIDATES = 300
CUTOFF = 60
COMMON = 0.25  # trigrams in more than this share of the names are not counted


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


class Suggester:
    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))  # alphabetical: the order that breaks the last ties
        self.lengths = np.array([len(name) for name in self.names], dtype=np.int64)
        postings: dict[str, list[int]] = defaultdict(list)
        for number, name in enumerate(self.names):
            for gram in _trigrams(name):
                postings[gram].append(number)
        self.postings = {gram: np.array(ids, dtype=np.int32) for gram, ids in postings.items()}
        self.common = max(CANDIDATES, int(len(self.names) * COMMON))  # small catalogs: count every trigram

    def suggest(self, query: str, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` names close to `query`, best first; () when none is close enough."""
        found = [self.postings[g] for g in _trigrams(query) if g in self.postings]
        counted = [ids for ids in found if len(ids) <= self.common] or found
        if not counted:
            return ()
        counts = np.bincount(np.concatenate(counted), minlength=len(self.names))
        shared = counts.astype(np.uint8) if len(counted) < 256 else counts
        candidates = [self.names[i] for i in self._candidates(shared, len(query)).tolist()]
        scored = process.extract(query, candidates, scorer=fuzz.WRatio, limit=None, score_cutoff=CUTOFF)
        if len(scored) > limit:  # best first: keep everything tied with the last place
            last = scored[limit - 1][1]
            scored = [match for match in scored if match[1] >= last]
        best = sorted(scored, key=lambda match: (-match[1], -fuzz.ratio(query, match[0]), match[0]))
        return tuple(name for name, _, _ in best[:limit])

    def _candidates(self, shared: np.ndarray, length: int) -> np.ndarray:
        """Indexes of at most `CANDIDATES` names: the most trigrams `shared` with a query of
        `length` characters first, then the closest length, then alphabetical."""
        low, high = 1, int(shared.max())
        while low < high:  # the highest level that at least CANDIDATES names reach
            middle = (low + high + 1) // 2
            if np.count_nonzero(shared >= middle) >= CANDIDATES:
                low = middle
            else:
                high = middle - 1
        picked = np.flatnonzero(shared >= low)
        if len(picked) > CANDIDATES:
            # One distinct int64 per name (ids < 2**32, gaps capped at 2**16 - 1): no ties to partition.
            gap = np.minimum(np.abs(self.lengths[picked] - length), 0xFFFF)
            key = (-shared[picked].astype(np.int64) << 48) | (gap << 32) | picked
            picked = picked[np.argpartition(key, CANDIDATES - 1)[:CANDIDATES]]
        return picked
