""""Did you mean": close catalog names for a query that found nothing, fast at 100k names.

Scoring every name with rapidfuzz costs ~50 ms at 100k, so a trigram index picks the few
hundred names sharing the most trigrams with the query first (numpy counts them), and only
those are scored: WRatio (copes with partial names like `paymnt`), ties broken by plain ratio.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from rapidfuzz import fuzz, process

CANDIDATES = 300
CUTOFF = 60


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


class Suggester:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        postings: dict[str, list[int]] = defaultdict(list)
        for number, name in enumerate(self.names):
            for gram in _trigrams(name):
                postings[gram].append(number)
        self.postings = {gram: np.array(ids, dtype=np.int32) for gram, ids in postings.items()}

    def suggest(self, query: str, limit: int = 3) -> tuple[str, ...]:
        found = [self.postings[g] for g in _trigrams(query) if g in self.postings]
        if not found:
            return ()
        counts = np.bincount(np.concatenate(found), minlength=len(self.names))
        if len(self.names) > CANDIDATES:
            picked = np.argpartition(counts, -CANDIDATES)[-CANDIDATES:]
        else:
            picked = np.arange(len(self.names))
        candidates = [self.names[i] for i in picked if counts[i] > 0]
        scored = process.extract(query, candidates, scorer=fuzz.WRatio, limit=limit * 4, score_cutoff=CUTOFF)
        best = sorted(scored, key=lambda match: (-match[1], -fuzz.ratio(query, match[0]), match[0]))
        return tuple(name for name, _, _ in best[:limit])
