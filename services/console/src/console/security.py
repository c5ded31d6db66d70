"""What protects the console's pages in the browser: CSRF tokens, origins and the CSP.

- Every POST carries a CSRF token (Flask-WTF's ``CSRFProtect``): a token signed with
  ``SECRET_KEY`` and bound to the session, valid for the session's idle timeout.
- A POST whose ``Origin`` (or, without one, ``Sec-Fetch-Site``) says it comes from another
  site is refused before the token is even read: SameSite=Lax cookies already keep the
  session out of most such requests; this refuses the rest, whatever the token.
- Pages are sent with ``Referrer-Policy: same-origin``, so the browser names their origin on
  the forms they send (:data:`REFERRER_POLICY`).
- Every page is sent with ``Content-Security-Policy: default-src 'self'`` and no
  ``unsafe-inline``: scripts and styles come only from the console's own static files, so
  markup injected into a page could not run.
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

from console.config import ConsoleSettings

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
REFERRER_POLICY = "same-origin"
"""Not the services' ``no-referrer``: under it a browser sends ``Origin: null`` with a form,
and the origin check (and Flask-WTF's referrer check over HTTPS) could not tell the
console's own forms from anyone's. ``same-origin`` still sends nothing to other sites."""
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

csrf = CSRFProtect()


class ForeignOrigin(CSRFError):
    """A state-changing request sent by a page of another site."""

    code = 403
    description = "This request came from another site; the console only accepts its own pages."


def init_security(app: Flask, settings: ConsoleSettings) -> None:
    """CSRF tokens on every form, the origin check and the CSP on every page."""
    app.config.update(
        WTF_CSRF_TIME_LIMIT=settings.SESSION_IDLE_TIMEOUT,
        WTF_CSRF_SSL_STRICT=True,  # over HTTPS, the Referer must be this host too
    )
    app.before_request(_refuse_foreign_origin)  # first: a foreign request is refused as such
    csrf.init_app(app)
    app.after_request(_page_headers)


def _refuse_foreign_origin() -> None:
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin != request.host_url.rstrip("/"):
        raise ForeignOrigin
    if origin is None and request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ForeignOrigin


def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = REFERRER_POLICY
        response.headers["Cache-Control"] = "no-store"  # pages show one administrator's data
    return response
