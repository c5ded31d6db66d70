"""The data layer: a service's database and its cache.

The database extension and its engine (liveness, metrics, per-app state), typed columns,
migrations and the ``flask db`` commands, and the cache-aside cache.
"""
