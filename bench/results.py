"""What one run measured: a sample per read target and round, gathered per target, and the
records the logins, the hashes and the orders keep (``logins``, ``in_process``, ``ordering``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from database import TransactionCounts
from in_process import HashTiming
from logins import LoginMeasurement
from options import Options
from ordering import OrdersMeasurement
from targets import PROBE_REQUESTS, Target
from wrk import WrkRun


@dataclass(frozen=True)
class Sample:
    """One round of one target: the measured run and what the server did meanwhile."""

    run: WrkRun
    warmup_requests: int
    transactions: TransactionCounts
    """The change in the database's counters from before the start to after the stop."""
    worker_boots: int

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second of the measured run."""
        return self.run.requests / self.run.duration_s if self.run.duration_s else 0.0


@dataclass
class Result:
    """Every round of one target."""

    target: Target
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> Sample:
        """The round of median rate (the slower middle one for an even count).

        Other work on the machine only ever slows a round down, sometimes by half; one such
        round moves a mean a lot and a median little.
        """
        ranked = sorted(self.samples, key=lambda sample: sample.requests_per_second)
        return ranked[(len(ranked) - 1) // 2]

    @property
    def served(self) -> int:
        """Every request the server answered while the transaction counters ran."""
        return sum(s.run.requests + s.warmup_requests + PROBE_REQUESTS for s in self.samples)

    @property
    def transactions(self) -> TransactionCounts:
        """Commits and rollbacks over all rounds."""
        commits = sum(s.transactions.commits for s in self.samples)
        return TransactionCounts(commits, sum(s.transactions.rollbacks for s in self.samples))

    def per_request(self, count: int) -> float:
        """``count`` divided by the requests served."""
        return count / self.served if self.served else 0.0

    @property
    def restarts(self) -> str:
        """Workers forked beyond the first ones, over all rounds (Gunicorn only)."""
        if self.target.workers is None:
            return "-"
        return str(sum(s.worker_boots - self.target.workers for s in self.samples))


@dataclass
class Report:
    """Everything RESULTS.md and stdout show about one run."""

    options: Options
    command: str
    started: datetime
    machine: dict[str, str]
    order: list[str] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    password_hash: HashTiming | None = None
    token_verification: str | None = None
    """What ``bench/token_verification.py`` printed, when it exists."""
    logins: LoginMeasurement | None = None
    orders: OrdersMeasurement | None = None

    def add(self, target: Target, sample: Sample) -> None:
        """Record one round of ``target``, in the order measured."""
        self.results.setdefault(target.key, Result(target)).samples.append(sample)
        self.order.append(target.key)
