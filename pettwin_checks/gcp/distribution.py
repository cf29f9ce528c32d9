"""google.api.Distribution values (as timeSeries.list returns them in JSON): parse, merge, percentiles.

Pure functions, no I/O. Bucket layouts (Google's BucketOptions):
- linearBuckets {numFiniteBuckets N, width w, offset o}: finite boundaries o + w*k, k = 0..N
- exponentialBuckets {numFiniteBuckets N, growthFactor g, scale s}: boundaries s * g**k, k = 0..N
- explicitBuckets {bounds [b0..bm]}: those boundaries
Bucket 0 is the underflow (-inf, b0), bucket i is [b(i-1), bi), the last is the overflow [b_last, +inf).
`bucketCounts` may be shorter than the number of buckets (proto3 JSON drops trailing zeros); int64 values
arrive as strings.

Percentiles interpolate linearly inside the bucket that holds rank q/100 * count. The underflow bucket
answers its upper boundary and the overflow bucket its lower boundary: a bound, never an invented value.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

MAX_BUCKETS = 100_000  # far above any Google layout; guards against a hostile numFiniteBuckets


class MalformedDistribution(ValueError):
    pass


@dataclass(frozen=True)
class Distribution:
    count: int
    mean: float
    bounds: tuple[float, ...]  # finite boundaries b0..bm; len(bucket_counts) == len(bounds) + 1
    bucket_counts: tuple[int, ...]

    @property
    def has_buckets(self) -> bool:
        return bool(self.bounds)


def _number(value, what: str) -> float:
    if isinstance(value, bool):
        raise MalformedDistribution(f"{what} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedDistribution(f"{what} is not a number: {value!r:.40}") from None
    if not math.isfinite(number):
        raise MalformedDistribution(f"{what} is not finite")
    return number


def _int64(value, what: str) -> int:
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise MalformedDistribution(f"{what} is not an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MalformedDistribution(f"{what} is not an integer: {value!r:.40}") from None
    if number < 0:
        raise MalformedDistribution(f"{what} is negative")
    return number


def bucket_bounds(bucket_options) -> tuple[float, ...]:
    """The finite boundaries of a BucketOptions JSON object. Raises MalformedDistribution."""
    if not isinstance(bucket_options, dict):
        raise MalformedDistribution("bucketOptions is not an object")
    layouts = [key for key in ("linearBuckets", "exponentialBuckets", "explicitBuckets") if key in bucket_options]
    if len(layouts) != 1:
        raise MalformedDistribution("bucketOptions must hold exactly one of linear, exponential, explicit buckets")
    layout = layouts[0]
    body = bucket_options[layout]
    if not isinstance(body, dict):
        raise MalformedDistribution(f"{layout} is not an object")
    if layout == "explicitBuckets":
        raw = body.get("bounds")
        if not isinstance(raw, list) or not raw or len(raw) > MAX_BUCKETS:
            raise MalformedDistribution("explicitBuckets.bounds must be a non-empty list")
        bounds = tuple(_number(b, "explicit bound") for b in raw)
        if any(later < earlier for earlier, later in itertools.pairwise(bounds)):
            raise MalformedDistribution("explicitBuckets.bounds are not increasing")
        return bounds
    finite = _int64(body.get("numFiniteBuckets", 0), "numFiniteBuckets")
    if not 0 < finite <= MAX_BUCKETS:
        raise MalformedDistribution("numFiniteBuckets must be between 1 and 100000")
    if layout == "linearBuckets":
        width = _number(body.get("width", 0), "width")
        offset = _number(body.get("offset", 0), "offset")
        if width <= 0:
            raise MalformedDistribution("linearBuckets.width must be positive")
        return tuple(offset + width * k for k in range(finite + 1))
    growth = _number(body.get("growthFactor", 0), "growthFactor")
    scale = _number(body.get("scale", 0), "scale")
    if growth <= 1 or scale <= 0:
        raise MalformedDistribution("exponentialBuckets need growthFactor > 1 and scale > 0")
    try:
        bounds = tuple(scale * growth**k for k in range(finite + 1))
    except OverflowError:
        raise MalformedDistribution("exponentialBuckets boundaries overflow") from None
    if not math.isfinite(bounds[-1]):
        raise MalformedDistribution("exponentialBuckets boundaries overflow")
    return bounds


def parse_distribution(value) -> Distribution:
    """A Distribution from a distributionValue JSON object. Raises MalformedDistribution.

    Without bucketOptions/bucketCounts the value still gives count and mean (bounds empty).
    """
    if not isinstance(value, dict):
        raise MalformedDistribution("distributionValue is not an object")
    count = _int64(value.get("count", 0), "count")
    mean = _number(value.get("mean", 0.0), "mean") if count else 0.0
    raw_counts = value.get("bucketCounts")
    options = value.get("bucketOptions")
    if raw_counts is None or options is None:
        if raw_counts is not None:
            raise MalformedDistribution("bucketCounts without bucketOptions")
        return Distribution(count, mean, (), ())
    bounds = bucket_bounds(options)
    if not isinstance(raw_counts, list):
        raise MalformedDistribution("bucketCounts is not a list")
    if len(raw_counts) > len(bounds) + 1:
        raise MalformedDistribution(f"{len(raw_counts)} bucket counts for {len(bounds) + 1} buckets")
    counts = [_int64(c, "bucket count") for c in raw_counts]
    counts.extend([0] * (len(bounds) + 1 - len(counts)))
    if sum(counts) != count:
        raise MalformedDistribution(f"bucket counts add up to {sum(counts)}, not to count {count}")
    return Distribution(count, mean, bounds, tuple(counts))


def merge(distributions: list[Distribution]) -> Distribution:
    """The sum of distributions (several points of one series). Same layout required for buckets."""
    if not distributions:
        return Distribution(0, 0.0, (), ())
    total = sum(d.count for d in distributions)
    mean = sum(d.mean * d.count for d in distributions) / total if total else 0.0
    layouts = {d.bounds for d in distributions if d.count}
    if len(layouts) > 1 or any(d.count and not d.has_buckets for d in distributions):
        # Counts and mean still add up; percentiles would mix layouts, so there are none.
        return Distribution(total, mean, (), ())
    bounds = layouts.pop() if layouts else distributions[0].bounds
    counts = (
        tuple(sum(d.bucket_counts[i] for d in distributions if d.count) for i in range(len(bounds) + 1))
        if bounds
        else ()
    )
    return Distribution(total, mean, bounds, counts)


def percentile(dist: Distribution, q: float) -> float | None:
    """The q-th percentile (0 < q <= 100) estimated from the buckets; None when empty or without buckets."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if dist.count == 0 or not dist.has_buckets:
        return None
    bounds = dist.bounds
    rank = q / 100.0 * dist.count
    cumulative = 0
    last = len(dist.bucket_counts) - 1
    for index, count in enumerate(dist.bucket_counts):
        if count == 0:
            continue
        if cumulative + count >= rank:
            if index == 0:
                return bounds[0]
            if index == last:
                return bounds[-1]
            lower, upper = bounds[index - 1], bounds[index]
            return lower + (rank - cumulative) / count * (upper - lower)
        cumulative += count
    return bounds[-1]  # float rounding left rank a hair above the total
