"""analysis.describe: the per-step statistics of analyze_metrics.py, against the statistics module."""

from __future__ import annotations

import statistics

import pytest

from polisen_collector.analysis import describe


def test_describe_agrees_with_the_statistics_module():
    values = [1.2, 0.4, 3.3, 0.9, 2.5, 0.4, 7.75, 1.1, 0.95, 2.0, 4.4]
    assert describe(values) == {
        "count": 11, "mean": pytest.approx(statistics.mean(values)), "median": 1.2,
        "p95": pytest.approx(statistics.quantiles(values, n=20, method="inclusive")[18]),
        "min": 0.4, "max": 7.75, "stdev": pytest.approx(statistics.stdev(values)),
    }


def test_describe_of_one_value_and_of_none():
    assert describe([2.5]) == {"count": 1, "mean": 2.5, "median": 2.5, "p95": 2.5, "min": 2.5, "max": 2.5,
                               "stdev": None}
    assert describe([]) == {"count": 0, "mean": None, "median": None, "p95": None, "min": None, "max": None,
                            "stdev": None}


def test_p95_interpolates_between_the_two_largest_of_twenty():
    assert describe([float(n) for n in range(1, 21)])["p95"] == pytest.approx(19.05)
