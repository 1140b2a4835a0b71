""""Did you mean": close catalog names for a query that found nothing, fast at 100k names.

Scoring every name with rapidfuzz costs ~50 ms at 100k, so a trigram index picks at most
`CANDIDATES` names first and only those are scored: WRatio (copes with partial names like
`paymnt`), ties broken by plain ratio, then by name. The goal is p99 ≤ 5 ms on a shared 2-core
machine, so every pass over the 100k counts (numpy) and every call per candidate counts:
- Trigrams in more than a quarter of the names (`er-` is in two thirds of the synthetic 100k
  catalog) say almost nothing about which name is meant, yet they are half the postings to count,
  so they are not counted (unless the query has no other).
- The counts are almost all ties (most names share a trigram or two with the query), where
  `np.argpartition` degrades: p99 6–8 ms alone at 100k. Instead, a binary search over the count
  levels (on a uint8 copy: an eighth of the memory to read) finds the highest level that
  `CANDIDATES` names reach; the names above it are all taken, and at that last level the closest
  in length to the query (a typo moves the length by a character or two), then alphabetical, so
  ties are deterministic. The name meant is almost always among the first few by count.
- WRatio is plain ratio for two whitespace-free strings whose lengths differ by less than 1.5×,
  which is most candidates of a typo; so plain ratio scores all candidates in one rapidfuzz call
  (`process.cdist`) and WRatio only the others. Results are exactly WRatio's, ~5× cheaper.
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
        self.spaced = np.array([any(ch.isspace() for ch in name) for name in self.names], dtype=bool)
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
        picked = self._candidates(counts.astype(np.uint8) if len(counted) < 256 else counts, len(query))
        candidates = [self.names[i] for i in picked.tolist()]
        ratio = process.cdist([query], candidates, scorer=fuzz.ratio, dtype=np.float64)[0]
        score = ratio.copy()
        for i in np.flatnonzero(self._not_plain_ratio(picked, query)).tolist():
            score[i] = fuzz.WRatio(query, candidates[i])
        best = np.lexsort((picked, -ratio, -score))[:limit]  # WRatio, then plain ratio, then alphabetical
        return tuple(candidates[i] for i in best.tolist() if score[i] >= CUTOFF)

    def _not_plain_ratio(self, picked: np.ndarray, query: str) -> np.ndarray:
        """Where WRatio may differ from plain ratio: it *is* plain ratio when neither string has
        whitespace (one token each) and the longer is less than 1.5 times the shorter."""
        if any(ch.isspace() for ch in query):
            return np.ones(len(picked), dtype=bool)
        lengths = self.lengths[picked]
        return self.spaced[picked] | (np.maximum(lengths, len(query)) >= 1.5 * np.minimum(lengths, len(query)))

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
