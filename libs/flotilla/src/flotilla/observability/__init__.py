"""The observability layer: what a service tells about itself.

JSON logs, Prometheus metrics (their multiprocess directory and their own server),
tracing, error reports, and the request's context carried into tasks.
"""
