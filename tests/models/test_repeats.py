"""The repeat score: a likelihood ratio of character n-gram models, each item left out of its own."""

import math

import pytest

from makemore.models.wrappers.repeats import _Counts, repeat_scores

V = 5
ITEMS = [[1, 2, 0], [2, 2, 3, 0], [3, 0], [1, 4, 0], [4, 4, 0], [2, 1, 0]]
COUNTS = [2, 1, 1, 3, 1, 2]


def model(items, order):
    counts = _Counts(order, V)
    for item in items:
        counts.add(item)
    return counts


def test_unigram_probabilities_are_smoothed_counts():
    counts = model([[1, 2, 0], [1, 0]], order=1)
    # 5 tokens (1: twice, 2: once, 0: twice), add-half smoothing towards uniform over V.
    expected = sum(math.log((n + 0.5) / (5 + 0.5 * V)) for n in (2, 1, 2))  # item 1, 2, 0
    assert counts.log_prob([1, 2, 0]) == pytest.approx(expected)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_sum_to_one_over_the_next_token(order):
    counts = model(ITEMS, order)
    for prefix in ([], [2], [2, 2], [4, 1]):
        total = sum(math.exp(counts.log_prob(prefix + [t]) - counts.log_prob(prefix)) for t in range(V))
        assert total == pytest.approx(1.0)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_each_item_is_scored_by_models_that_leave_it_out(order):
    scores = repeat_scores(ITEMS, COUNTS, order, V)
    for i, item in enumerate(ITEMS):
        others = [(x, n) for j, (x, n) in enumerate(zip(ITEMS, COUNTS)) if j != i]
        repeated = model([x for x, n in others if n > 1], order)
        single = model([x for x, n in others if n == 1], order)
        assert scores[i] == pytest.approx(repeated.log_prob(item) - single.log_prob(item))
