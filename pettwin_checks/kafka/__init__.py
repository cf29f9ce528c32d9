"""What the Kafka lag check and the leader election share: how to reach a Kafka cluster and the settings of each
Kafka client the project uses."""
