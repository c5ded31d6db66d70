"""Everything one run measured, section by section, as the report and the figures read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from in_process import HashTiming
from logins import LoginMeasurement
from memory import ServerMemory
from options import Options
from ordering import OrdersResult
from rates import RatesResult
from reads import ReadsResult


@dataclass(frozen=True)
class SystemDescription:
    """What ran: the checkout, how it was started, and which server serves each service."""

    checkout: str
    version: str
    command: str
    servers: tuple[tuple[str, str, str], ...]
    """(component, server and version, command line) per web service."""


@dataclass
class Report:
    """Everything RESULTS.md, stdout and the saved figures show about one run."""

    options: Options
    command: str
    started: datetime
    machine: dict[str, str]
    token_verification: str | None = None
    """What ``bench/token_verification.py`` printed."""
    password_hash: HashTiming | None = None
    logins: LoginMeasurement | None = None
    system: SystemDescription | None = None
    reads: ReadsResult | None = None
    orders: OrdersResult | None = None
    rates: RatesResult | None = None
    memory: list[ServerMemory] = field(default_factory=list)
    elapsed_s: float = 0.0
    """How long the whole run took."""
