"""Password hashing with Argon2id, cost from settings, equal timing for unknown accounts."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from users.config import UsersSettings


class Passwords:
    """Hashes and checks passwords with the configured Argon2id cost."""

    def __init__(self, settings: UsersSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.ARGON2_TIME_COST,
            memory_cost=settings.ARGON2_MEMORY_KIB,
            parallelism=settings.ARGON2_PARALLELISM,
        )
        # Checked in place of a missing account's hash, so a login for an unknown name
        # costs the same time as one for a known name.
        self._decoy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """The Argon2id hash to store for ``password``."""
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no hash, spend the same time and say False."""
        try:
            return self.hasher.verify(password_hash or self._decoy_hash, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when ``password_hash`` was made with other cost settings than today's."""
        return self.hasher.check_needs_rehash(password_hash)


def passwords() -> Passwords:
    """The current app's password hasher."""
    hasher: Passwords = current_app.extensions["users.passwords"]
    return hasher
