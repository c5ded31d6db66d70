"""The web layer: what a request meets on its way through a service.

The API and its problem+json errors, strict JSON bodies and body guards, security headers,
the request's context and lifecycle, pagination, health probes and rate limits.
"""
