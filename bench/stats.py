"""Percentiles and ratios of the benchmark's samples, with nothing to install (no numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """
    Return the ``q``-th percentile of ``values``, interpolating linearly between the closest ranks.

    The interpolation is numpy's default (``method="linear"``), so five samples give a p95 between the
    two largest rather than the largest alone.

    :param values: the samples; at least one.
    :param q: the percentile, from 0 to 100.
    :raises ValueError: no samples, or ``q`` out of range.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """The median and the 95th percentile of some samples, and how many there were."""

    p50: float
    p95: float
    n: int


def summarize(values: Iterable[float]) -> Summary | None:
    """
    Return the p50 and p95 of ``values``, or ``None`` when there are none (a case that did not run).

    :param values: the samples.
    """
    samples = list(values)
    if not samples:
        return None
    return Summary(p50=percentile(samples, 50), p95=percentile(samples, 95), n=len(samples))


def ratio(ours: float | None, stock: float | None) -> float | None:
    """
    Return ``ours / stock``, or ``None`` when either is missing or stock is zero (no ratio to speak of).

    :param ours: our figure.
    :param stock: the stock operator's figure for the same case.
    """
    if ours is None or stock is None or stock == 0:
        return None
    return ours / stock
