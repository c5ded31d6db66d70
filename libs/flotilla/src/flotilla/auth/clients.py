"""Client secrets: what a service proves it is with when it asks the issuer for a token.

A service calling another one (orders reserving stock in catalog) does so as itself, with a
short-lived access token the issuer (users) signs for it after checking its client secret
(OAuth 2.0's client credentials grant). The issuer holds ``name=secret`` pairs
(``SERVICE_CLIENT_SECRETS``), each caller its own secret (``SERVICE_CLIENT_SECRET``).

In development neither needs setting: both sides derive a service's secret from one random
key kept under ``VAR_DIR`` (made once, like users' development signing key), so ``make run``
works with nothing configured and production, which refuses empty secrets, never does this.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

DEVELOPMENT_CLIENT_KEY_FILE = "keys/service-clients.key"
"""Under ``VAR_DIR``: the key every development client secret is derived from."""

MINIMUM_SECRET_LENGTH = 32
"""Characters a client secret must have in production: 32 random ones cannot be guessed."""


def parse_client_secrets(text: str) -> dict[str, str]:
    """``"orders=s3cret,other=…"`` as a mapping; raises ValueError naming a malformed entry."""
    clients: dict[str, str] = {}
    for entry in (item.strip() for item in text.split(",")):
        if not entry:
            continue
        name, separator, secret = entry.partition("=")
        if not separator or not name.strip() or not secret.strip():
            raise ValueError("each entry must be name=secret")
        clients[name.strip()] = secret.strip()
    return clients


def development_client_secret(var_dir: Path, client_id: str) -> str:
    """The development secret of ``client_id``: HMAC of its name under the shared key."""
    key = development_key(var_dir / DEVELOPMENT_CLIENT_KEY_FILE)
    return hmac.new(key, client_id.encode(), hashlib.sha256).hexdigest()


class ClientRegistry:
    """The services the issuer knows, and the check of a secret presented for one."""

    def __init__(self, secrets_by_client: Mapping[str, str], *, development_dir: Path | None):
        self._secrets = dict(secrets_by_client)
        self._development_dir = development_dir

    def authenticate(self, client_id: str, secret: str) -> bool:
        """True when ``secret`` is ``client_id``'s; compared in constant time."""
        expected = self._secrets.get(client_id)
        if expected is None and self._development_dir is not None and not self._secrets:
            expected = development_client_secret(self._development_dir, client_id)
        # Compared even for an unknown client, so the time taken does not say which exist.
        matches = hmac.compare_digest(
            hashlib.sha256(secret.encode()).digest(),
            hashlib.sha256((expected or "").encode()).digest(),
        )
        return expected is not None and matches


def development_key(path: Path) -> bytes:
    """The key at ``path``, created on first use; concurrent processes agree on one."""
    with contextlib.suppress(FileNotFoundError):
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".clients-")
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp creates it readable by us only
            file.write(secrets.token_hex(32))
        os.link(temporary, path)  # fails if another process linked its key first
        log.warning("development client key created", extra={"path": str(path)})
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
    return bytes.fromhex(path.read_text().strip())
