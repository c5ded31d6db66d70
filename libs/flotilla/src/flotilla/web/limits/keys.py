"""Bucket keys: whom a request is counted for. The client's address unless a view says."""

from __future__ import annotations

from flask import request


def client_address() -> str | None:
    """The client's IP address: the default bucket key.

    ``ProxyFix`` (``PROXY_HOPS``) has already replaced the proxy's address by the client's,
    from the ``X-Forwarded-For`` entries of trusted proxies only, and only for a request whose
    peer is one of ``TRUSTED_PROXIES``, so a client cannot pick it.
    """
    return request.remote_addr
