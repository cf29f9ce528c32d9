"""google.api.Distribution values: bucket layouts, merging, percentiles, and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BucketOptions:
    """One of Google's three bucket layouts; `bounds` are the finite boundaries B0..Bk-1.

    Bucket 0 is the underflow (-inf, B0); bucket i is [Bi-1, Bi); the last bucket is the overflow [Bk-1, +inf).
    """

    kind: str  # "exponential" | "linear" | "explicit"
    params: tuple

    @classmethod
    def from_spec(cls, spec: dict) -> BucketOptions:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError("buckets must have exactly one of exponential, linear, explicit")
        kind, body = next(iter(spec.items()))
        if kind == "exponential":
            return cls(kind, (int(body["num_finite_buckets"]), float(body["growth_factor"]), float(body["scale"])))
        if kind == "linear":
            return cls(kind, (int(body["num_finite_buckets"]), float(body["width"]), float(body["offset"])))
        if kind == "explicit":
            bounds = tuple(float(b) for b in body["bounds"])
            if list(bounds) != sorted(bounds) or not bounds:
                raise ValueError("explicit bounds must be a non-empty ascending list")
            return cls(kind, bounds)
        raise ValueError(f"unknown bucket layout {kind!r}")

    @property
    def bounds(self) -> list[float]:
        if self.kind == "exponential":
            n, growth, scale = self.params
            return [scale * growth**i for i in range(n + 1)]
        if self.kind == "linear":
            n, width, offset = self.params
            return [offset + width * i for i in range(n + 1)]
        return list(self.params)

    @property
    def num_buckets(self) -> int:
        return len(self.bounds) + 1

    def to_json(self) -> dict:
        if self.kind == "exponential":
            n, growth, scale = self.params
            return {"exponentialBuckets": {"numFiniteBuckets": n, "growthFactor": growth, "scale": scale}}
        if self.kind == "linear":
            n, width, offset = self.params
            return {"linearBuckets": {"numFiniteBuckets": n, "width": width, "offset": offset}}
        return {"explicitBuckets": {"bounds": list(self.params)}}

    def representative(self, index: int) -> float:
        """The value a count in bucket `index` stands for when a scenario gives counts only (for mean/SSD)."""
        bounds = self.bounds
        if index == 0:
            return bounds[0] / 2 if bounds[0] > 0 else bounds[0]
        if index >= len(bounds):
            return bounds[-1]
        return (bounds[index - 1] + bounds[index]) / 2


@dataclass(frozen=True)
class Distribution:
    options: BucketOptions
    counts: tuple[int, ...]  # full length: options.num_buckets
    mean: float
    sum_of_squared_deviation: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    @classmethod
    def from_counts(cls, options: BucketOptions, counts: list[int]) -> Distribution:
        if len(counts) > options.num_buckets:
            raise ValueError(f"{len(counts)} bucket counts for a layout of {options.num_buckets} buckets")
        full = tuple(int(c) for c in counts) + (0,) * (options.num_buckets - len(counts))
        total = sum(full)
        if total == 0:
            return cls(options, full, 0.0, 0.0)
        mean = sum(c * options.representative(i) for i, c in enumerate(full)) / total
        ssd = sum(c * (options.representative(i) - mean) ** 2 for i, c in enumerate(full))
        return cls(options, full, mean, ssd)

    def to_json(self) -> dict:
        # proto3 JSON omits default values: zero count, mean, SSD, and trailing zero bucket counts.
        body: dict = {}
        if self.count:
            body["count"] = str(self.count)
        if self.mean:
            body["mean"] = self.mean
        if self.sum_of_squared_deviation:
            body["sumOfSquaredDeviation"] = self.sum_of_squared_deviation
        body["bucketOptions"] = self.options.to_json()
        counts = list(self.counts)
        while counts and counts[-1] == 0:
            counts.pop()
        if counts:
            body["bucketCounts"] = [str(c) for c in counts]
        return body


def merge(distributions: list[Distribution]) -> Distribution:
    """Sum of distributions with one bucket layout (what REDUCE_SUM and ALIGN_SUM/DELTA do)."""
    options = distributions[0].options
    if any(d.options != options for d in distributions):
        raise ValueError("cannot merge distributions with different bucket options")
    counts = tuple(sum(col) for col in zip(*(d.counts for d in distributions), strict=True))
    total = sum(counts)
    if total == 0:
        return Distribution(options, counts, 0.0, 0.0)
    mean = sum(d.mean * d.count for d in distributions) / total
    ssd = sum(d.sum_of_squared_deviation + d.count * (d.mean - mean) ** 2 for d in distributions)
    return Distribution(options, counts, mean, ssd)


def percentile(dist: Distribution, p: float) -> float | None:
    """Percentile by linear interpolation inside the bucket holding rank p/100*count.

    The underflow bucket answers its upper bound, the overflow bucket its lower bound. None when empty.
    """
    total = dist.count
    if total == 0:
        return None
    bounds = dist.options.bounds
    rank = p / 100.0 * total
    cumulative = 0
    for index, count in enumerate(dist.counts):
        if count == 0:
            continue
        if cumulative + count >= rank or index == len(dist.counts) - 1:
            if index == 0:
                return bounds[0]
            if index >= len(bounds):
                return bounds[-1]
            lower, upper = bounds[index - 1], bounds[index]
            fraction = max(0.0, (rank - cumulative) / count)
            return lower + fraction * (upper - lower)
        cumulative += count
    return bounds[-1]
