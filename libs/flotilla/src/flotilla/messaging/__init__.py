"""The messaging layer: work and events that leave the request.

The broker, Celery tasks (retries, dead letters), the transactional outbox with its relay
and idempotent consumers, and the broker's readiness check.
"""
