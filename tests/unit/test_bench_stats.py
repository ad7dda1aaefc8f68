"""The benchmark's percentiles and ratios (``bench/stats.py``)."""

from __future__ import annotations

import pytest

from bench.stats import percentile, ratio, summarize


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0], 50, 3.0),
        ([3.0], 95, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        # numpy's linear interpolation: rank (5 - 1) * 0.95 = 3.8, between 4 and 5.
        ([5.0, 1.0, 4.0, 2.0, 3.0], 95, 4.8),
        ([1.0, 2.0], 50, 1.5),
        ([10.0, 20.0, 30.0, 40.0], 0, 10.0),
        ([10.0, 20.0, 30.0, 40.0], 100, 40.0),
    ],
)
def test_percentile_interpolates_linearly_between_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_refuses_no_samples_and_a_q_out_of_range() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_summarize_gives_p50_p95_and_the_count_or_none_without_samples() -> None:
    summary = summarize(iter([2.0, 4.0, 6.0]))
    assert summary is not None
    assert (summary.p50, summary.n) == (4.0, 3)
    assert summary.p95 == pytest.approx(5.8)
    assert summarize([]) is None


@pytest.mark.parametrize(
    ("ours", "stock", "expected"),
    [(1.0, 4.0, 0.25), (6.0, 3.0, 2.0), (None, 3.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_ratio_is_ours_over_stock_when_both_exist(
    ours: float | None, stock: float | None, expected: float | None
) -> None:
    assert ratio(ours, stock) == expected
