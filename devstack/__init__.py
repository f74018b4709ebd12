"""devstack: a real Kafka (KRaft, from Maven Central, on the JDK) and Redis on loopback."""
