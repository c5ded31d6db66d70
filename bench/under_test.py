"""What every section measured on the running system shares: the system, its seed, the tools."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loads import Wrk
from options import Options
from seeding import Seeded, log_in
from stack import Stack


@dataclass(frozen=True)
class SystemUnderTest:
    """The running system, what was seeded in it, and how loads are made."""

    stack: Stack
    seeded: Seeded
    wrk: Wrk
    options: Options
    logs: Path

    def customer_token(self) -> str:
        """A fresh access token of the customer (tokens live 15 minutes: one per section)."""
        customer = self.seeded.customer
        return log_in(self.stack, customer.username, customer.password)

    def url(self, path: str) -> str:
        """``path`` at the front door."""
        return f"{self.stack.front_door}{path}"
