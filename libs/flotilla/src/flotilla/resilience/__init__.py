"""The resilience layer: failing fast and recovering when a dependency fails.

Calls to other services (deadline, retries within a budget, circuit breaker), jittered
backoff, and the process's one Redis pool with its outage guard.
"""
