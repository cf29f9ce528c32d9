"""One agent of a fleet, for the leader-election test: runs the Kafka lag check every second in its own process
and prints one JSON line per run (when it ran, whether it led, how many cluster-scope series it submitted)."""

import json
import os
import sys
import time

from datadog_checks.base.stubs import aggregator

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from tests.contract import assert_contract


def main(bootstrap: str, group: str, leader_group: str) -> None:
    check = PettwinKafkaLagCheck(
        "pettwin_kafka_lag",
        {},
        [
            {
                "kafka_connect_str": bootstrap,
                "consumer_groups": {group: None},
                "leader_election": {"enabled": True, "group": leader_group, "session_timeout": 6},
                "min_collection_interval": 1,
            }
        ],
    )
    while True:
        aggregator.reset()
        started = time.time()
        error = check.run()
        try:
            assert_contract(aggregator, "pettwin.kafka.")
        except AssertionError as e:
            error = f"contract: {e}"
        leader = [m.value for m in aggregator.metrics("pettwin.kafka.collector.leader")]
        cluster = sum(len(ms) for name, ms in aggregator._metrics.items() if name != "pettwin.kafka.collector.leader")
        line = {
            "pid": os.getpid(),
            "start": started,
            "end": time.time(),
            "leader": leader == [1],
            "cluster_series": cluster,
            "error": error,
        }
        print(json.dumps(line), flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
