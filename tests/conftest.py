from tests.fixtures.gcp import *  # noqa: F401,F403  (gcp_emulator, gcp_env)
from tests.fixtures.kafka import *  # noqa: F401,F403  (kafka_broker, kafka_admin)
