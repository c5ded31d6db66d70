"""Settings of the users service: the chassis settings plus password hashing cost."""

from __future__ import annotations

from pydantic import Field

from flotilla import ServiceSettings


class UsersSettings(ServiceSettings):
    """Environment variables read by the users service."""

    SERVICE_NAME: str = Field("users", description="Name used in logs, metrics and the API title.")
    ARGON2_TIME_COST: int = Field(2, ge=1, description="Argon2id passes over memory per hash.")
    ARGON2_MEMORY_KIB: int = Field(
        19_456, ge=8, description="Argon2id memory per hash in KiB (OWASP: 19 MiB)."
    )
    ARGON2_PARALLELISM: int = Field(1, ge=1, description="Argon2id lanes per hash.")
