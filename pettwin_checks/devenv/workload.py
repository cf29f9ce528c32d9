"""A small PetTwin-like workload: pet telemetry produced to Kafka, consumers that keep up or fall behind on demand.

    python -m pettwin_checks.devenv.workload --bootstrap 127.0.0.1:9092 --produce-rate 50 --consume-rate 20

The producer sends a second's readings at the start of each second; the consumer commits what it processed, at most
`consume_rate` messages per second, so lag grows by `produce_rate - consume_rate` per second when the consumer is
the slower side. A consumer that keeps up (rate 0) drains each second's readings within milliseconds and commits
them, so its committed lag is 0 but for a moment each second, as a healthy consumer's is: the lag status sees no
growing lag where there is none.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

PETS = ("biscuit", "luna", "max", "nala", "pepper", "rocky")


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=timeout).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        future.result(timeout=timeout)


def telemetry(sequence: int) -> bytes:
    pet = PETS[sequence % len(PETS)]
    reading = {
        "pet_id": pet,
        "seq": sequence,
        "heart_rate": random.randint(60, 140),
        "temp_c": round(random.uniform(37.5, 39.5), 1),
    }
    return json.dumps(reading).encode()


def produce(bootstrap: str, topic: str, count: int, partition: int | None = None) -> None:
    """Produce `count` readings and wait until the broker has them all."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for sequence in range(count):
        kwargs = {"partition": partition} if partition is not None else {"key": PETS[sequence % len(PETS)].encode()}
        producer.produce(topic, telemetry(sequence), **kwargs)
        if sequence % 1000 == 999:
            producer.poll(0)
    producer.flush(30)


class PacedProducer(threading.Thread):
    """`rate` readings per second, sent together at the start of each second (a fractional rate carries over)."""

    def __init__(self, bootstrap: str, topic: str, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"producer-{topic}")
        self.bootstrap, self.topic, self.rate, self.stop = bootstrap, topic, rate, stop

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        sequence, due, tick = 0, 0.0, time.monotonic()
        while not self.stop.is_set():
            due += self.rate
            while sequence < int(due):
                producer.produce(self.topic, telemetry(sequence), key=PETS[sequence % len(PETS)].encode())
                sequence += 1
            producer.flush(5)
            tick += 1.0
            self.stop.wait(max(0.0, tick - time.monotonic()))
        producer.flush(10)


class PacedConsumer(threading.Thread):
    """Consumes at most `rate` messages per second (0: consumes as fast as it can) and commits each batch."""

    def __init__(self, bootstrap: str, topic: str, group: str, rate: float, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"consumer-{group}")
        self.bootstrap, self.topic, self.group, self.rate, self.stop = bootstrap, topic, group, rate, stop
        self.consumed = 0

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.topic])
        batch = max(1, int(self.rate)) if self.rate else 500
        # Keeping up: return as soon as a second's readings are in, and commit them at once.
        wait = 1.0 if self.rate else 0.05
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                messages = consumer.consume(batch, timeout=wait)
                records = [m for m in messages if m.error() is None]
                if records:
                    consumer.commit(asynchronous=False)
                    self.consumed += len(records)
                if self.rate:
                    self.stop.wait(max(0.0, len(records) / self.rate - (time.monotonic() - started)))
        finally:
            consumer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="pet-telemetry")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--group", default="pettwin-alerts")
    parser.add_argument("--produce-rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--consume-rate", type=float, default=0.0, help="messages per second; 0 keeps up")
    args = parser.parse_args(argv)

    ensure_topic(args.bootstrap, args.topic, args.partitions)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workers = [
        PacedProducer(args.bootstrap, args.topic, args.produce_rate, stop),
        PacedConsumer(args.bootstrap, args.topic, args.group, args.consume_rate, stop),
    ]
    for worker in workers:
        worker.start()
    stop.wait()
    for worker in workers:
        worker.join(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
