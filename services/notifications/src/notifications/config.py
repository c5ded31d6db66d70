"""Settings of the notifications service: the chassis settings plus SMTP and the mail itself."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import HeaderRegistry
from functools import cache
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from flotilla import ServiceSettings, TaskPool


class NotificationsSettings(ServiceSettings):
    """Environment variables read by the notifications service."""

    SERVICE_NAME: str = Field(
        "notifications", description="Name used in logs, metrics, queues and the API title."
    )
    SMTP_HOST: str = Field(
        "", description="SMTP server; empty: write .eml files under VAR_DIR/mail (development)."
    )
    SMTP_PORT: int = Field(587, ge=1, le=65535, description="SMTP server port (587: submission).")
    SMTP_STARTTLS: bool = Field(
        True, description="Upgrade to TLS with STARTTLS before sending; never fall back to clear."
    )
    SMTP_USERNAME: str = Field("", description="SMTP AUTH user name; empty: no login.")
    SMTP_PASSWORD: str = Field("", description="SMTP AUTH password.", repr=False)
    SMTP_TIMEOUT: float = Field(
        10.0, gt=0, description="Seconds to wait for the SMTP server at each step of a send."
    )
    SMTP_CA_FILE: str = Field(
        "", description="PEM file of CAs trusted for STARTTLS; empty: the system's CAs."
    )
    MAIL_FROM: str = Field(
        "Flotilla Shop <no-reply@shop.example>", description="From: of every e-mail sent."
    )
    SHOP_NAME: str = Field("Flotilla Shop", description="The shop's name as e-mails show it.")
    SHOP_URL: str = Field("http://127.0.0.1:8080", description="The shop's address in e-mails.")
    TASK_POOL: TaskPool = Field(
        "threads", description="Threads: sending e-mail waits on I/O (docs/adr/0019-task-pools.md)."
    )
    TASK_CONCURRENCY: int = Field(
        4, ge=1, description="E-mails a worker sends at once, one thread (and connection) each."
    )
    TASK_MAX_RETRIES: int = Field(
        20,
        ge=0,
        description="Retries of a failing e-mail before the dead-letter queue (about an hour).",
    )
    TASK_RETRY_BACKOFF: float = Field(
        2.0, gt=0, description="Base delay in seconds of the exponential, jittered retry backoff."
    )
    TASK_RETRY_BACKOFF_MAX: float = Field(
        600.0,
        gt=0,
        le=1500,
        description="Longest delay between retries; below RabbitMQ's 30-minute consumer_timeout.",
    )

    @field_validator("MAIL_FROM")
    @classmethod
    def _one_address(cls, value: str) -> str:
        mailbox_of(value)  # raises ValueError
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_mail(self) -> Self:
        if self.SMTP_USERNAME and not self.SMTP_STARTTLS:
            raise ValueError("SMTP_USERNAME needs SMTP_STARTTLS: a password is never sent in clear")
        if self.is_production and not self.SMTP_HOST:
            raise ValueError("SMTP_HOST must be set in production (.eml files are for development)")
        return self

    @property
    def mail_domain(self) -> str:
        """The domain of ``MAIL_FROM``; it ends every Message-ID this service makes."""
        return mailbox_of(self.MAIL_FROM).domain


@dataclass(frozen=True)
class Mailbox:
    """One address with an optional display name, as in ``Shop <no-reply@shop.example>``."""

    name: str
    address: str
    domain: str


@cache
def mailbox_of(value: str) -> Mailbox:
    """``value`` parsed as a From: header holding one mailbox; ``ValueError`` otherwise.

    Cached: ``MAIL_FROM`` is parsed once per process, not once per e-mail.
    """
    header: Any = HeaderRegistry()("From", value)  # typeshed lacks the dynamic header classes
    addresses = header.addresses
    if header.defects or len(addresses) != 1 or not addresses[0].domain:
        raise ValueError("must be one e-mail address, optionally with a name: 'Shop <a@b.c>'")
    found = addresses[0]
    return Mailbox(found.display_name, found.addr_spec, found.domain)
