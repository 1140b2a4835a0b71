"""`Suggester`: "did you mean" names for typos, transpositions and partial names; nothing when
nothing is close; deterministic ties; and, on a catalog far larger than `CANDIDATES`, the trigram
pre-selection must not lose the best match that scoring every name would find."""
from __future__ import annotations

import itertools
import random
import string

import numpy as np
import pytest
from rapidfuzz import fuzz, process

from bot.catalog import suggest
from bot.catalog.suggest import Suggester

SMALL = ["payment-service", "payments-api", "payout-service", "checkout-service", "artist-lookup", "artist-web",
         "billing-worker", "sophie.liskov1", "sophie.liskov2", "sophie.liskov3", "ada.lovelace"]

DOMAINS = ["payment", "checkout", "billing", "search", "catalog", "shipping", "identity", "ledger", "fraud", "pricing",
           "review", "cart", "order", "refund", "loyalty", "tax"]
ROLES = ["router", "scanner", "writer", "reader", "indexer", "ranker", "encoder", "exporter", "verifier", "limiter",
         "curator", "streamer", "dispatcher"]
SUFFIXES = ["service", "api", "worker", "gateway", "cron", "ui", "lib", "daemon", "job", "table", "bucket", "cli"]
# 16 * 13 * 12 = 2,496 names plus people: far more than CANDIDATES, many sharing most trigrams, and
# `er-` in nine names out of ten (so it is not counted).
LARGE = [f"{d}-{r}-{s}" for d, r, s in itertools.product(DOMAINS, ROLES, SUFFIXES)] + \
        [f"{first}.{last}{n}" for first, last in (("ada", "lovelace"), ("grace", "hopper"), ("sophie", "liskov"))
         for n in range(1, 40)]


@pytest.fixture(scope="module")
def large() -> Suggester:
    return Suggester(LARGE)


def typo(rng: random.Random, name: str) -> str:
    """One or two edits: substitute, delete, insert or swap neighbours."""
    chars = list(name)
    for _ in range(rng.choice((1, 2))):
        at = rng.randrange(len(chars) - 1)
        edit = rng.choice(("substitute", "delete", "insert", "swap"))
        if edit == "substitute":
            chars[at] = rng.choice(string.ascii_lowercase)
        elif edit == "delete":
            del chars[at]
        elif edit == "insert":
            chars.insert(at, rng.choice(string.ascii_lowercase))
        else:
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return "".join(chars)


def best_of_all(names: list[str], query: str, limit: int = 3) -> list[tuple[str, float]]:
    """What scoring every name would answer, with the suggester's ordering."""
    scored = process.extract(query, names, scorer=fuzz.WRatio, limit=None, score_cutoff=suggest.CUTOFF)
    ranked = sorted(scored, key=lambda match: (-match[1], -fuzz.ratio(query, match[0]), match[0]))
    return [(name, score) for name, score, _ in ranked[:limit]]


@pytest.mark.parametrize("query, meant", [
    ("paymnt-service", "payment-service"),   # deletion
    ("paymemt-service", "payment-service"),  # substitution
    ("artst-lookup", "artist-lookup"),
    ("billling-worker", "billing-worker"),   # insertion
])
def test_typo_suggests_the_name_first(query: str, meant: str):
    assert Suggester(SMALL).suggest(query)[0] == meant


@pytest.mark.parametrize("query, meant", [("chekcout-service", "checkout-service"), ("artsit-web", "artist-web")])
def test_transposition_suggests_the_name_first(query: str, meant: str):
    assert Suggester(SMALL).suggest(query)[0] == meant


@pytest.mark.parametrize("query, meant", [("checkout", "checkout-service"), ("billing", "billing-worker"),
                                          ("paymnt", "payment-service"), ("lovelace", "ada.lovelace")])
def test_partial_name_is_suggested(query: str, meant: str):
    assert meant in Suggester(SMALL).suggest(query)


@pytest.mark.parametrize("query", ["zzzzqqq", "", "x", "wrker-billing"])
def test_nothing_close_suggests_nothing(query: str):
    assert Suggester(SMALL).suggest(query) == ()


def test_empty_catalog_suggests_nothing():
    assert Suggester(()).suggest("payment-service") == ()


def test_ties_are_alphabetical_whatever_the_input_order():
    shuffled = SMALL * 2  # duplicates too
    random.Random(3).shuffle(shuffled)
    assert Suggester(shuffled).suggest("sophie.liskovx") == ("sophie.liskov1", "sophie.liskov2", "sophie.liskov3")
    assert Suggester(SMALL).suggest("sophie.liskovx", limit=2) == ("sophie.liskov1", "sophie.liskov2")


@pytest.mark.parametrize("query", ["service payment", "payment servce", "paymnt", "payment-service-v2-canary",
                                   "ada lovelace", "lovelace", "chekcout"])
def test_scores_are_wratio_with_or_without_whitespace(query: str):
    """Plain ratio stands in for WRatio only where they are equal; names or queries with spaces
    (not from the catalog index, which turns them into hyphens) are scored with WRatio."""
    names = SMALL + ["payment service", "checkout service", "ada lovelace", "payment-service-v2"]
    got = Suggester(names).suggest(query)
    assert list(got) == [name for name, _ in best_of_all(names, query)]


def test_large_catalog_typos_find_what_scoring_every_name_finds(large: Suggester):
    rng = random.Random(5)
    meant = rng.sample(LARGE, 150)
    queries = [typo(rng, name) for name in meant]
    listed = same = 0
    for query, name in zip(queries, meant):
        got = large.suggest(query)
        everything = best_of_all(LARGE, query)
        # The pre-selection never loses the best score, and almost never changes the three names.
        assert got and fuzz.WRatio(query, got[0]) == everything[0][1], (query, got, everything)
        same += list(got) == [n for n, _ in everything]
        listed += name in got
    assert same >= 147
    assert listed >= 147


def test_large_catalog_transpositions_and_partial_names(large: Suggester):
    assert large.suggest("ledger-ranekr-api")[0] == "ledger-ranker-api"
    assert large.suggest("fruad-scanner-worker")[0] == "fraud-scanner-worker"
    assert large.suggest("grace.hoper12")[0] == "grace.hopper12"
    partial = large.suggest("shiping-dispatcher")
    assert partial and all(name.startswith("shipping-dispatcher-") for name in partial)
    assert large.suggest("qqqqzzzz") == ()


def test_query_of_common_trigrams_only_still_gets_answers():
    """Trigrams in most names are not counted, unless the query has no other."""
    names = [f"{a}{b}-service" for a in string.ascii_lowercase for b in string.ascii_lowercase]
    suggester = Suggester(names)
    grams = [g for g in suggest._trigrams("-service") if g in suggester.postings]
    assert grams and all(len(suggester.postings[g]) > suggester.common for g in grams)
    assert suggester.suggest("-service") == ("aa-service", "ab-service", "ac-service")


def test_large_catalog_ties_are_deterministic(large: Suggester):
    reversed_order = Suggester(list(reversed(LARGE)))
    for query in ("sophie.liskovx", "payment-router", "cart-ranker-xyz", "ada.lovelace"):
        assert large.suggest(query) == reversed_order.suggest(query) == large.suggest(query)
    assert large.suggest("sophie.liskovx") == ("sophie.liskov1", "sophie.liskov2", "sophie.liskov3")


def test_candidates_take_the_top_levels_then_the_closest_lengths(monkeypatch: pytest.MonkeyPatch):
    names = ["aaaa", "bb", "bbbbbb", "cccc", "dd", "eeee", "ffffffff"]
    suggester = Suggester(names)
    shared = np.array([1, 3, 3, 2, 2, 2, 9], dtype=np.uint8)  # per name, in alphabetical order
    monkeypatch.setattr(suggest, "CANDIDATES", 4)
    picked = [suggester.names[i] for i in suggester._candidates(shared, 4)]
    # 9 and both 3s fully; one of the three 2s: `cccc` and `eeee` are the query's length, `cccc` is first.
    assert sorted(picked) == ["bb", "bbbbbb", "cccc", "ffffffff"]
    monkeypatch.setattr(suggest, "CANDIDATES", 10)
    assert len(suggester._candidates(shared, 4)) == 7  # fewer names than the cap: all that share a trigram
