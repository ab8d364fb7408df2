"""BART's noise functions: their statistics over ~10⁵ tokens against hand-computed
references (Poisson(3) pmf, uniform permutations and rotations), the bookkeeping of
each output, and the config's refusals."""
from __future__ import annotations

import math
from collections import Counter
from itertools import permutations

import numpy as np
import pytest
from scipy.stats import chisquare, poisson

from selfsup.errors import InputError
from selfsup.seq2seq.noising import (
    NoiseConfig,
    apply_noise,
    document_rotation,
    infilling_spans,
    sentence_permutation,
    text_infilling,
    token_deletion,
    token_masking,
)

MASK = -1
# chi-square tests at this p-value: a correct implementation fails one of them 1 time in
# 10⁴ per seed; the seeds are fixed, so the outcome is too.
P_MIN = 1e-4


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("n, rate", [(100, 0.15), (37, 0.3), (5, 0.5), (10, 1.0), (10, 0.0)])
def test_token_masking_masks_ceil_rate_n_positions_uniformly(n, rate):
    g, tokens = rng(), list(range(n))
    hits = np.zeros(n)
    for _ in range(2000):
        out = token_masking(tokens, rate, MASK, g)
        masked = np.array(out) == MASK
        assert masked.sum() == math.ceil(rate * n)
        assert all(o == t for o, t, m in zip(out, tokens, masked) if not m)  # the rest untouched, in place
        hits += masked
    if 0 < rate < 1:
        assert chisquare(hits).pvalue > P_MIN  # every position equally likely


def test_token_deletion_removes_ceil_rate_n_positions_and_keeps_the_order():
    g, n, rate = rng(), 50, 0.2
    kept = np.zeros(n)
    for _ in range(4000):
        out = token_deletion(list(range(n)), rate, g)
        assert len(out) == n - 10 and out == sorted(out)  # a subsequence, in order
        kept[out] += 1
    assert chisquare(kept).pvalue > P_MIN
    assert token_deletion([7, 8], 0.0, g) == [7, 8]


def poisson_pmf(lam: float, k: int) -> float:
    return math.exp(-lam) * lam ** k / math.factorial(k)


def test_infilling_spans_cover_exactly_the_budget_without_overlap():
    g, lengths = rng(), []
    for _ in range(4000):
        spans = infilling_spans(100, 0.3, g)
        assert sum(length for _, length in spans) == 30
        for (s1, l1), (s2, _) in zip(spans, spans[1:]):
            assert s2 >= s1 + l1  # in position order, never overlapping
        assert spans[-1][0] + spans[-1][1] <= 100
        lengths.extend(length for _, length in spans)
    # Spans are drawn until they reach the budget B = 30, so a document has N = min{k: S_k >= B}
    # of them, S_k ~ Poisson(3k): E[N] = sum_k P(S_k < B), and the pooled mean length is B / E[N].
    expected_spans = sum(poisson.cdf(29, 3.0 * k) for k in range(200))
    assert np.mean(lengths) == pytest.approx(30 / expected_spans, rel=0.01), (np.mean(lengths), 30 / expected_spans)
    assert infilling_spans(100, 0.0, g) == []


def test_infilling_untrimmed_lengths_match_the_poisson_pmf_and_zero_spans_are_inserts():
    # Only the last-drawn span of a document is trimmed to the budget: the lengths are
    # re-drawn in draw order from the same seed, checked to be the spans', and compared to
    # the pmf without the trimmed one.
    lengths = []
    for seed in range(300):
        spans = infilling_spans(1000, 0.3, rng(seed))
        g = rng(seed)  # infilling_spans draws the lengths first, then the layout
        draws = []
        total = 0
        while total < 300:
            draws.append(int(g.poisson(3.0)))
            total += draws[-1]
        assert sorted(min(d, 300 - sum(draws[:i])) for i, d in enumerate(draws)) == \
            sorted(length for _, length in spans)
        lengths.extend(draws[:-1])  # the trimmed one left out
    counts = Counter(lengths)
    n, top = len(lengths), 9
    expected = [n * poisson_pmf(3.0, k) for k in range(top)] + [n * (1 - sum(poisson_pmf(3.0, k) for k in range(top)))]
    observed = [counts[k] for k in range(top)] + [sum(c for k, c in counts.items() if k >= top)]
    assert chisquare(observed, expected).pvalue > P_MIN, (observed, expected)
    assert abs(counts[0] / n - math.exp(-3)) < 0.01  # ~5% of spans are zero-length inserts


def test_text_infilling_replaces_each_span_by_one_mask():
    g, n = rng(), 60
    for _ in range(500):
        state = g.bit_generator.state
        spans = infilling_spans(n, 0.3, g)
        g.bit_generator.state = state
        out = text_infilling(list(range(n)), 0.3, MASK, g)
        assert out.count(MASK) == len(spans)  # one mask per span, zero-length ones included
        kept = [t for t in out if t != MASK]
        assert kept == sorted(kept) and n - len(kept) == math.ceil(0.3 * n)
        # independently: the masks sit exactly where the spans were
        expected, position = [], 0
        for start, length in spans:
            expected += list(range(position, start)) + [MASK]
            position = start + length
        assert out == expected + list(range(position, n))
    with_inserts = [text_infilling(list(range(n)), 0.3, MASK, g) for _ in range(2000)]
    # a zero-length span shows as a mask between two consecutive kept tokens
    inserts = sum(1 for out in with_inserts for a, m, b in zip(out, out[1:], out[2:])
                  if m == MASK and a != MASK and b != MASK and b == a + 1)
    assert inserts > 0


def test_text_infilling_masks_the_rate_away_from_the_edges():
    g, n, hits = rng(), 40, np.zeros(40)
    for _ in range(8000):
        for start, length in infilling_spans(n, 0.3, g):
            hits[start:start + length] += 1
    assert hits.sum() / (8000 * n) == pytest.approx(0.3)
    # spans are contiguous, so the first and last tokens are covered less; inside, a position is masked at
    # ~ the rate (a little above it, making up for the edges)
    interior = hits[8:-8] / 8000
    assert np.all(np.abs(interior - 0.3) < 0.05), interior


def test_sentence_permutation_keeps_every_sentence_and_is_uniform():
    g, sentences = rng(), [[1, 2], [3], [4, 5, 6]]
    seen = Counter()
    for _ in range(6000):
        out = sentence_permutation(sentences, 1.0, g)
        assert sorted(out) == sorted(sentences)
        seen[tuple(map(tuple, out))] += 1
    orders = [tuple(map(tuple, p)) for p in permutations(sentences)]
    assert set(seen) == set(orders)
    assert chisquare([seen[o] for o in orders]).pvalue > P_MIN
    # a rate below 1 moves at most ceil(rate · count) sentences
    ten = [[i] for i in range(10)]
    for _ in range(500):
        out = sentence_permutation(ten, 0.3, g)
        assert sorted(out) == ten and sum(o != s for o, s in zip(out, ten)) <= 3
    assert sentence_permutation(ten, 0.0, g) == ten


def test_document_rotation_is_a_rotation_at_a_uniform_offset():
    g, tokens = rng(), list(range(7))
    offsets = Counter()
    for _ in range(7000):
        out = document_rotation(tokens, g)
        k = out.index(0)
        assert out == tokens[-k:] + tokens[:-k] if k else out == tokens
        offsets[k] += 1
    assert chisquare([offsets[k] for k in range(7)]).pvalue > P_MIN
    assert document_rotation([], g) == []


def test_apply_noise_combines_and_is_a_function_of_the_generator():
    sentences = [list(range(10 * i, 10 * i + 10)) for i in range(5)]
    config = NoiseConfig(token_masking=0.1, token_deletion=0.1, text_infilling=0.2, sentence_permutation=1.0,
                         document_rotation=0.5)
    a, b = apply_noise(sentences, config, MASK, rng(3)), apply_noise(sentences, config, MASK, rng(3))
    assert a == b and a != apply_noise(sentences, config, MASK, rng(4))
    assert apply_noise(sentences, NoiseConfig.parse(""), MASK, rng(3)) == [t for s in sentences for t in s]
    # rotation alone with rate 0.5: unchanged half the time plus the identity rotation (1/50) of the other half
    rotate = NoiseConfig.parse("document_rotation=0.5")
    flat = [t for s in sentences for t in s]
    g = rng()
    unchanged = sum(apply_noise(sentences, rotate, MASK, g) == flat for _ in range(4000)) / 4000
    assert abs(unchanged - (0.5 + 0.5 / 50)) < 0.03


def test_noise_config_parses_and_refuses_bad_names_and_rates():
    config = NoiseConfig.parse("text_infilling=0.3, sentence_permutation=1, poisson_lambda=3.5")
    assert (config.text_infilling, config.sentence_permutation, config.token_masking, config.poisson_lambda) == \
        (0.3, 1.0, 0.0, 3.5)
    assert NoiseConfig.parse(config.describe()) == config
    with pytest.raises(InputError, match="unknown noise 'text_infiling'.*did you mean 'text_infilling'"):
        NoiseConfig.parse("text_infiling=0.3")
    with pytest.raises(InputError, match="field 'token_masking'.*\\[0, 1\\].*1.5"):
        NoiseConfig.parse("token_masking=1.5")
    with pytest.raises(InputError, match="token_deletion"):
        NoiseConfig(token_deletion=-0.1)
    with pytest.raises(InputError, match="not a number"):
        NoiseConfig.parse("token_masking=lots")
