"""The cardinality budget: which groups, topics and partitions get series of their own. And the tag values that
Datadog's intake would merge into one series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

GRANULARITIES = ("group", "topic", "partition")


@dataclass
class ContextPlan:
    """Which groups, group+topics and partitions get their own series; the rest is folded into a coarser rollup."""

    group_detail: set[str]  # group ids with their own group series (the others go into the folded-groups rollup)
    topic_detail: set[str]  # group ids with per-topic series
    partition_detail: set[tuple[str, str]]  # (group, topic) with per-partition series
    folded: int  # contexts the budget folded into a coarser level


def plan_contexts(
    group_ids: list[str],
    partitions_by_group_topic: dict[tuple[str, str], int],
    granularity: str,
    max_contexts: int,
    group_cost: int,
    topic_cost: int,
    partition_cost: int,
) -> ContextPlan:
    """Spend the budget coarse to fine, in name order so the same groups and topics keep detail run to run.

    Costs are metric contexts per group, per group+topic and per partition. What does not fit is counted in
    `folded`: a group's own series fold into the folded-groups rollup, its topics and partitions into its rollups.
    """
    topics: dict[str, list[str]] = {group: [] for group in sorted(group_ids)}
    for group, topic in sorted(partitions_by_group_topic):
        topics.setdefault(group, []).append(topic)
    level = GRANULARITIES.index(granularity)

    def cost_below(group: str) -> tuple[int, list[int]]:
        """Contexts of the group's topics (at topic level and finer) and of each topic's partitions."""
        topic_cost_total = topic_cost * len(topics[group]) if level >= 1 else 0
        partition_costs = [
            partition_cost * partitions_by_group_topic[(group, t)] if level >= 2 else 0 for t in topics[group]
        ]
        return topic_cost_total, partition_costs

    used, folded = 0, 0
    group_detail: set[str] = set()
    for group in topics:
        if used + group_cost <= max_contexts:
            used += group_cost
            group_detail.add(group)
        else:
            topic_total, partition_costs = cost_below(group)
            folded += group_cost + topic_total + sum(partition_costs)
    topic_detail: set[str] = set()
    for group in sorted(group_detail):
        topic_total, partition_costs = cost_below(group)
        if level >= 1 and used + topic_total <= max_contexts:
            used += topic_total
            topic_detail.add(group)
        else:
            folded += topic_total + sum(partition_costs)
    partition_detail: set[tuple[str, str]] = set()
    for group in sorted(topic_detail):
        for topic, cost in zip(topics[group], cost_below(group)[1]):
            if level >= 2 and used + cost <= max_contexts:
                used += cost
                partition_detail.add((group, topic))
            else:
                folded += cost
    return ContextPlan(group_detail, topic_detail, partition_detail, folded)


# Datadog's intake lower-cases tag values, turns spaces and commas into underscores and keeps 200 characters.
TAG_VALUE_LENGTH = 200


def intake_tag_value(value: str) -> str:
    """`value` as Datadog's intake stores it."""
    return value.lower().replace(" ", "_").replace(",", "_")[:TAG_VALUE_LENGTH]


def intake_collisions(names: Iterable[str]) -> list[tuple[str, ...]]:
    """Sets of distinct names the intake would store as one tag value (their series would merge), sorted."""
    by_value: dict[str, set[str]] = defaultdict(set)
    for name in names:
        by_value[intake_tag_value(name)].add(name)
    return sorted(tuple(sorted(names)) for names in by_value.values() if len(names) > 1)


class RaisedSeries:
    """Per-partition series that are 0 while a partition is healthy (its lag status; whether it lacks a committed
    offset): submitted while not 0, once more as 0 on the run they fall back (graphs and monitors see the recovery),
    and for every partition on the check's first run (a recovery while the agent was down is seen too).

    A healthy partition's 0 is a custom-metric context Datadog bills that says nothing; at thousands of partitions
    these were two of every seven series a run submitted, and most of what a run spent (bench/README.md)."""

    def __init__(self) -> None:
        self._raised: set[tuple] | None = None  # what was submitted not 0 last run; None before the first run
        self._raising: set[tuple] = set()

    def wanted(self, key: tuple, value: int) -> bool:
        """Whether to submit `value` for `key` (a partition) this run."""
        if value:
            self._raising.add(key)
            return True
        return self._raised is None or key in self._raised

    def end_run(self) -> None:
        self._raised, self._raising = self._raising, set()
