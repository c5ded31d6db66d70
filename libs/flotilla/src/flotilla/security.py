"""HTTP hygiene: trusted proxy headers and security headers on every response.

``X-Forwarded-*`` headers are trusted only for the number of proxies declared in
``PROXY_HOPS``; trusting more would let any client forge its address and scheme. HSTS is sent
only when the request really arrived over HTTPS (directly or per a trusted proxy), because a
browser ignores it over HTTP and a development setup without TLS must stay reachable.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def trust_proxies(app: Flask, hops: int) -> None:
    """Believe ``X-Forwarded-For/Proto/Host/Port/Prefix`` from ``hops`` proxies in front."""
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )


class SecurityHeaders:
    """Adds nosniff, frame denial, referrer policy, and HSTS over HTTPS to every response."""

    def __init__(self, app: Flask | None = None, *, hsts_max_age: int = 31_536_000) -> None:
        self.hsts_value = f"max-age={hsts_max_age}; includeSubDomains" if hsts_max_age else ""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the header hook on ``app``."""
        app.extensions["flotilla.security"] = self
        app.after_request(self._add_headers)

    def _add_headers(self, response: Response) -> Response:
        for name, value in _STATIC_HEADERS.items():
            response.headers.setdefault(name, value)
        if self.hsts_value and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", self.hsts_value)
        return response
