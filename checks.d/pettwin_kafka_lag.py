from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck  # noqa: F401
