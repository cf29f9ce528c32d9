"""Which groups, topics and partitions to watch: pure filter logic over what the broker listed."""

from __future__ import annotations

import re

from .lag import GroupSnapshot, TopicPartition

# Kafka's and Confluent's own topics: offsets, transactions, and Confluent's `_confluent-*` internals.
INTERNAL_TOPIC = re.compile(r"^(__consumer_offsets|__transaction_state|_confluent-.*)$")


class Selection:
    """The `consumer_groups` map (group -> topics -> partitions, each level optional) and the regex filters."""

    def __init__(
        self,
        consumer_groups: dict[str, dict[str, list[int]] | None],
        monitor_unlisted: bool,
        include_groups: list[str],
        exclude_groups: list[str],
        include_topics: list[str],
        exclude_topics: list[str],
    ) -> None:
        self.consumer_groups = {group: dict(topics or {}) for group, topics in consumer_groups.items()}
        self.monitor_unlisted = monitor_unlisted
        self._include_groups = [re.compile(p) for p in include_groups]
        self._exclude_groups = [re.compile(p) for p in exclude_groups]
        self._include_topics = [re.compile(p) for p in include_topics]
        self._exclude_topics = [re.compile(p) for p in exclude_topics]

    @property
    def needs_group_listing(self) -> bool:
        return self.monitor_unlisted or not self.consumer_groups

    def wants_group(self, group_id: str) -> bool:
        if group_id in self.consumer_groups:
            return True
        if not self.needs_group_listing:
            return False
        return _passes(group_id, self._include_groups, self._exclude_groups)

    def wants_topic(self, topic: str) -> bool:
        return not INTERNAL_TOPIC.match(topic) and _passes(topic, self._include_topics, self._exclude_topics)

    def group_ids(self, listed: list[str]) -> list[str]:
        """Configured groups first, then listed ones that pass the filters; each once, in a stable order."""
        ids = dict.fromkeys(self.consumer_groups)
        ids.update(dict.fromkeys(g for g in sorted(listed) if self.wants_group(g)))
        return list(ids)

    def resolve_partitions(
        self, group: GroupSnapshot, partitions_by_topic: dict[str, tuple[TopicPartition, ...]]
    ) -> tuple[list[TopicPartition], set[str]]:
        """The group's partitions to report, and what is wrong with what it references (one text each): configured
        topics or partitions that do not exist, topics deleted since the group committed to them.

        Configured topics with listed partitions give those; a configured topic without partitions, or a topic the
        group committed to or is assigned, gives every partition of that topic, so partitions added since the last
        commit show up as uncommitted instead of being missed.
        """
        configured = self.consumer_groups.get(group.group_id) or {}
        topics = set(configured) or {t for t, _ in group.committed} | {t for t, _ in group.assigned}
        partitions: list[TopicPartition] = []
        problems: set[str] = set()
        for topic in sorted(topics):
            if not self.wants_topic(topic) and topic not in configured:
                continue
            existing = partitions_by_topic.get(topic)
            if existing is None:
                problems.add(
                    f"configured topic {topic} does not exist on the cluster: check consumer_groups"
                    if topic in configured
                    else f"committed offsets for topic {topic}, which was deleted; ignored"
                )
                continue
            listed = configured.get(topic)
            if listed:
                wanted = sorted(set(listed))  # each once
                partitions.extend(existing[p] for p in wanted if 0 <= p < len(existing))
                missing = [p for p in wanted if not 0 <= p < len(existing)]
                if missing:
                    problems.add(
                        f"configured partitions {missing} of topic {topic} do not exist (it has {len(existing)}, "
                        f"0 to {len(existing) - 1}): check consumer_groups"
                    )
            else:
                partitions.extend(existing)
        return partitions, problems

    def is_missing(self, group: GroupSnapshot) -> bool:
        """A configured group the cluster does not know: described as Dead, with no member and no committed offset
        (a group that exists is Empty at least while it has offsets; a listed group exists by definition)."""
        return (
            group.group_id in self.consumer_groups
            and group.error is None
            and group.state == "Dead"
            and not group.members
            and not group.committed
        )


def _passes(name: str, include: list[re.Pattern], exclude: list[re.Pattern]) -> bool:
    if include and not any(p.search(name) for p in include):
        return False
    return not any(p.search(name) for p in exclude)
