"""Which broker errors are asked again within the run, how long to wait between attempts, and how what still failed
is said (one line per broker, naming what it could not answer for).

As Kafka's own clients do: an answer that says the partition leader or the group coordinator moved (or is still
loading) invalidates what the client knew; the client refreshes it (metadata, FindCoordinator) and asks again only
for what failed, after a short backoff, until the run's budget runs out. A dropped connection is the same: the next
attempt reconnects, or asks the broker that leads or coordinates now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable

import kafka.errors as Errors

# Kafka's retry.backoff.ms and retry.backoff.max.ms defaults: the first retry after 0.1 s, doubling up to 1 s.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 1.0
# A group's requests answered with these went to a broker that no longer coordinates it, or not yet.
COORDINATOR_MOVED = frozenset(
    error.errno
    for error in (
        Errors.NotCoordinatorError,
        Errors.CoordinatorNotAvailableError,
        Errors.CoordinatorLoadInProgressError,
    )
)
# Items a failure line names before it counts the rest.
NAMED_ITEMS = 5


def leader_moved(error_code: int) -> bool:
    """A ListOffsets answer for a partition whose leader is elsewhere, not elected yet, or not caught up: the
    metadata is stale (Kafka's InvalidMetadataError family: NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
    UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH...) or the new leader has no offset to give yet."""
    error = Errors.for_code(error_code)
    return issubclass(error, Errors.InvalidMetadataError) or error is Errors.OffsetNotAvailableError


def coordinator_moved(error_code: int) -> bool:
    return error_code in COORDINATOR_MOVED


class Backoff:
    """The wait before each next attempt, doubling from FIRST_BACKOFF up to MAX_BACKOFF."""

    def __init__(self) -> None:
        self._next = FIRST_BACKOFF

    def next(self) -> float:
        wait, self._next = self._next, min(2 * self._next, MAX_BACKOFF)
        return wait


def failure_lines(
    what: str,
    failed: Iterable[tuple[Hashable, Hashable, str]],
    broker_name: Callable[[Hashable], str],
    item_name: Callable[[Hashable], str],
) -> list[str]:
    """One line per broker for the (item, broker, error) that still failed: `broker 2 (host:port): ListOffsets failed
    for 3 partitions (t[0], t[1], t[4]): NotLeaderForPartitionError`."""
    by_broker: dict[Hashable, list[tuple[Hashable, str]]] = defaultdict(list)
    for item, broker, error in failed:
        by_broker[broker].append((item, error))
    lines = []
    for broker, items in sorted(by_broker.items(), key=lambda entry: str(entry[0])):
        names = sorted(item_name(item) for item, _ in items)
        shown = ", ".join(names[:NAMED_ITEMS]) + (
            f" (+{len(names) - NAMED_ITEMS} more)" if len(names) > NAMED_ITEMS else ""
        )
        errors = sorted({error for _, error in items})
        lines.append(f"{broker_name(broker)}: {what} failed for {len(names)} ({shown}): {'; '.join(errors[:3])}")
    return lines
