"""Embedded PostgreSQL and Kafka-compatible broker for local runs and tests."""
