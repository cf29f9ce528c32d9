"""Distribution maths against hand-computed cases, and properties over arbitrary shapes."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pettwin_checks.gcp.distribution import (
    Distribution,
    MalformedDistribution,
    bucket_bounds,
    merge,
    parse_distribution,
    percentile,
)

pytestmark = pytest.mark.unit


def test_exponential_layout_percentiles_by_hand():
    # bounds 1, 2, 4, 8: buckets (-inf,1) [1,2) [2,4) [4,8) [8,inf); 2 + 4 + 2 values
    dist = parse_distribution(
        {
            "count": "8",
            "mean": 3.5,
            "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 2, "scale": 1}},
            "bucketCounts": ["0", "2", "4", "2"],
        }
    )
    assert dist.bounds == (1.0, 2.0, 4.0, 8.0)
    assert dist.bucket_counts == (0, 2, 4, 2, 0)
    assert percentile(dist, 50) == pytest.approx(3.0)  # rank 4: 2 + (4-2)/4 * 2
    assert percentile(dist, 95) == pytest.approx(7.2)  # rank 7.6: 4 + 1.6/2 * 4
    assert percentile(dist, 99) == pytest.approx(7.84)  # rank 7.92: 4 + 1.92/2 * 4


def test_linear_layout_with_trailing_zeros_dropped():
    # bounds 0, 10, 20, 30, 40; counts for buckets 0..2 only (proto3 JSON drops trailing zeros)
    dist = parse_distribution(
        {
            "count": "10",
            "mean": 10.0,
            "bucketOptions": {"linearBuckets": {"numFiniteBuckets": 4, "width": 10, "offset": 0}},
            "bucketCounts": ["0", "5", "5"],
        }
    )
    assert dist.bucket_counts == (0, 5, 5, 0, 0, 0)
    assert percentile(dist, 50) == pytest.approx(10.0)  # rank 5 ends bucket [0,10)
    assert percentile(dist, 95) == pytest.approx(19.0)  # rank 9.5: 10 + 4.5/5 * 10
    assert percentile(dist, 99) == pytest.approx(19.8)


def test_explicit_layout_overflow_answers_its_lower_bound():
    # bounds 0, 100, 250, 500: 20 in [100,250), 80 in [250,500), 20 in [500,inf)
    dist = parse_distribution(
        {
            "count": 120,
            "mean": 404.0,
            "bucketOptions": {"explicitBuckets": {"bounds": [0, 100, 250, 500]}},
            "bucketCounts": [0, 0, 20, 80, 20],
        }
    )
    assert percentile(dist, 50) == pytest.approx(375.0)  # rank 60: 250 + 40/80 * 250
    assert percentile(dist, 95) == 500.0  # rank 114 falls in the overflow bucket
    assert percentile(dist, 99) == 500.0


def test_underflow_answers_its_upper_bound():
    dist = parse_distribution(
        {
            "count": "4",
            "mean": 5,
            "bucketOptions": {"explicitBuckets": {"bounds": [10, 20]}},
            "bucketCounts": ["3", "1"],
        }
    )
    assert percentile(dist, 50) == 10.0


def test_without_buckets_count_and_mean_only():
    dist = parse_distribution({"count": "3", "mean": 2.5})
    assert (dist.count, dist.mean) == (3, 2.5)
    assert percentile(dist, 50) is None
    assert percentile(parse_distribution({}), 50) is None


@pytest.mark.parametrize(
    "value, reason",
    [
        (
            {"count": "3", "bucketOptions": {"explicitBuckets": {"bounds": [1]}}, "bucketCounts": ["1", "1", "1"]},
            "3 bucket counts for 2 buckets",
        ),
        (
            {"count": "5", "bucketOptions": {"explicitBuckets": {"bounds": [1]}}, "bucketCounts": ["1", "1"]},
            "add up to 2, not to count 5",
        ),
        (
            {"count": "1", "bucketOptions": {"explicitBuckets": {"bounds": [1]}}, "bucketCounts": ["-1", "2"]},
            "negative",
        ),
        (
            {
                "count": "1",
                "bucketOptions": {"exponentialBuckets": {"numFiniteBuckets": 2, "growthFactor": 1, "scale": 1}},
                "bucketCounts": ["1"],
            },
            "growthFactor > 1",
        ),
        (
            {
                "count": "1",
                "bucketOptions": {"linearBuckets": {"numFiniteBuckets": 2, "width": 0, "offset": 0}},
                "bucketCounts": ["1"],
            },
            "width must be positive",
        ),
        (
            {"count": "1", "bucketOptions": {"explicitBuckets": {"bounds": [3, 1]}}, "bucketCounts": ["1"]},
            "not increasing",
        ),
        (
            {
                "count": "1",
                "bucketOptions": {"explicitBuckets": {"bounds": [1]}, "linearBuckets": {}},
                "bucketCounts": ["1"],
            },
            "exactly one",
        ),
        ({"count": "many"}, "not an integer"),
        ({"count": "1", "mean": "NaN"}, "not finite"),
        ({"count": "1", "bucketCounts": ["1"]}, "without bucketOptions"),
    ],
)
def test_malformed_distributions_are_rejected_with_the_reason(value, reason):
    with pytest.raises(MalformedDistribution, match=reason):
        parse_distribution(value)


def test_merge_adds_counts_and_weights_means():
    bounds = (1.0, 2.0)
    merged = merge([Distribution(2, 1.5, bounds, (0, 2, 0)), Distribution(6, 3.0, bounds, (0, 1, 5))])
    assert merged.count == 8
    assert merged.mean == pytest.approx((2 * 1.5 + 6 * 3.0) / 8)
    assert merged.bucket_counts == (0, 3, 5)


def test_merge_of_different_layouts_keeps_count_and_mean_but_no_percentiles():
    merged = merge([Distribution(1, 1.0, (1.0,), (0, 1)), Distribution(1, 3.0, (2.0,), (0, 1))])
    assert (merged.count, merged.mean) == (2, 2.0)
    assert percentile(merged, 50) is None


def test_bucket_bounds_of_each_layout():
    assert bucket_bounds({"linearBuckets": {"numFiniteBuckets": 2, "width": 0.5, "offset": -1}}) == (-1.0, -0.5, 0.0)
    assert bucket_bounds(
        {"exponentialBuckets": {"numFiniteBuckets": 2, "growthFactor": 10, "scale": 0.1}}
    ) == pytest.approx((0.1, 1.0, 10.0))
    assert bucket_bounds({"explicitBuckets": {"bounds": ["1.5", 2]}}) == (1.5, 2.0)


@st.composite
def distributions(draw):
    bounds = sorted(set(draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12))))
    counts = draw(st.lists(st.integers(0, 10_000), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return Distribution(sum(counts), 0.0, tuple(bounds), tuple(counts))


@given(distributions(), st.floats(0, 100), st.floats(0, 100))
def test_percentiles_stay_within_the_bounds_and_grow_with_q(dist, q1, q2):
    low, high = sorted((q1, q2))
    p_low, p_high = percentile(dist, low), percentile(dist, high)
    if dist.count == 0:
        assert p_low is None and p_high is None
        return
    assert dist.bounds[0] - 1e-6 <= p_low <= p_high + 1e-6
    assert p_high <= dist.bounds[-1] + 1e-6


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(
            st.sampled_from(
                [
                    "count",
                    "mean",
                    "bucketOptions",
                    "bucketCounts",
                    "explicitBuckets",
                    "linearBuckets",
                    "exponentialBuckets",
                    "bounds",
                    "numFiniteBuckets",
                    "width",
                    "offset",
                    "growthFactor",
                    "scale",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_values)
def test_any_shape_parses_or_is_rejected_never_crashes(value):
    try:
        dist = parse_distribution(value)
    except MalformedDistribution:
        return
    assert dist.count >= 0
    assert math.isfinite(dist.mean)
    if dist.has_buckets:
        assert sum(dist.bucket_counts) == dist.count
        assert len(dist.bucket_counts) == len(dist.bounds) + 1
