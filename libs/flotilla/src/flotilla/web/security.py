"""HTTP hygiene: trusted proxy headers and security headers on every response.

``X-Forwarded-*`` headers are trusted only when the request comes from one of the
``TRUSTED_PROXIES`` addresses, and then only for the number of proxies declared in
``PROXY_HOPS``. A count alone is not enough: a service port reachable other than through the
proxy (inside the network, or exposed by mistake) would let any client name its own address,
escaping per-address rate limits, and its own scheme, receiving HSTS over plain HTTP. HSTS is sent
only when the request really arrived over HTTPS (directly or per a trusted proxy), because a
browser ignores it over HTTP and a development setup without TLS must stay reachable.

The headers are added by a WSGI middleware around the app rather than by an ``after_request``
hook: it sees every response, errors Flask renders after its hooks included, and it works on
the plain list of header pairs the server receives, which costs a few microseconds where
werkzeug's ``Headers.setdefault`` cost about twenty per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

STATIC_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS_HEADER = "Strict-Transport-Security"


def trust_proxies(app: Flask, hops: int, proxies: Sequence[IPv4Network | IPv6Network] = ()) -> None:
    """Believe ``X-Forwarded-For/Proto/Host/Port/Prefix`` from ``hops`` proxies in front.

    Only a request whose socket peer lies in one of ``proxies`` is rewritten; any other is
    served as it arrived, its forwarded headers ignored.
    """
    if hops > 0 and proxies:
        fixed = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
        app.wsgi_app = _FromTrustedPeers(app.wsgi_app, fixed, proxies)  # type: ignore[method-assign]


class _FromTrustedPeers:
    """Sends a request through ``ProxyFix`` only when its peer is a trusted proxy."""

    def __init__(
        self,
        app: WSGIApplication,
        fixed: WSGIApplication,
        proxies: Sequence[IPv4Network | IPv6Network],
    ) -> None:
        self.app = app
        self.fixed = fixed
        self.proxies = tuple(proxies)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request, with forwarded values only from a trusted peer."""
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)

    def trusts(self, peer: object) -> bool:
        """True when ``peer`` (the socket's remote address) is one of the trusted proxies."""
        if not isinstance(peer, str):
            return False
        try:
            address = ip_address(peer.partition("%")[0])  # fe80::1%eth0: the zone is no part
        except ValueError:  # not an address: nothing to trust
            return False
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        return any(address in network for network in self.proxies)


class SecurityHeaders:
    """Adds nosniff, frame denial, referrer policy, and HSTS over HTTPS to every response.

    A header the app set itself is kept. Register it before :func:`trust_proxies`, so the
    scheme it judges HTTPS by is the one the trusted proxy reported.
    """

    def __init__(self, app: Flask | None = None, *, hsts_max_age: int = 31_536_000) -> None:
        self.hsts_value = f"max-age={hsts_max_age}; includeSubDomains" if hsts_max_age else ""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Wrap ``app``'s WSGI callable so every response gets the headers."""
        app.extensions["flotilla.security"] = self
        app.wsgi_app = _HeaderMiddleware(app.wsgi_app, self.hsts_value)  # type: ignore[method-assign]


class _HeaderMiddleware:
    """The WSGI layer that appends the headers a response does not have yet."""

    def __init__(self, app: WSGIApplication, hsts_value: str) -> None:
        self.app = app
        self.plain = _keyed(STATIC_HEADERS)
        self.secure = _keyed((*STATIC_HEADERS, (HSTS_HEADER, hsts_value))) if hsts_value else None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Call the app with a ``start_response`` that adds the missing headers."""
        extra = self.plain
        if self.secure is not None and environ.get("wsgi.url_scheme") == "https":
            extra = self.secure

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            present = {name.lower() for name, _value in headers}
            headers.extend(pair for key, pair in extra if key not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_headers)


def _keyed(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, tuple[str, str]], ...]:
    """Each header pair with its name in lower case, the form presence is checked in."""
    return tuple((name.lower(), (name, value)) for name, value in headers)
