"""Another service of the shop, as far as identity goes: ``gunicorn ... protected_app:app``.

It knows nothing of users but the JWKS URL in its environment (``AUTH_JWKS_URL``): it checks
the tokens users issues locally, the way catalog and orders do.
"""

from __future__ import annotations

from typing import Any

from flotilla import ServiceSettings, create_service, load_settings
from flotilla.auth import current_principal, require_auth

settings = load_settings(ServiceSettings, SERVICE_NAME="protected")
app = create_service(__name__, settings)


@app.get("/api/v1/things/mine")
@require_auth()
def read_mine() -> dict[str, Any]:
    """Who the token speaks for."""
    principal = current_principal()
    return {"user_id": principal.subject, "roles": sorted(principal.roles)}


@app.get("/api/v1/things/all")
@require_auth(roles=["admin"])
def read_all() -> dict[str, Any]:
    """Administrators only."""
    return {"things": []}
