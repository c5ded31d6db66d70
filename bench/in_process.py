"""Figures measured without a server: one password hash, and token verification.

* One Argon2id hash and one verification with the users service's own ``Passwords`` at the
  cost the servers run with, in this process, alternating, median of ``HASH_REPEATS``: what
  a login cannot go below, to compare with its latency over HTTP. The runner times it just
  before the logins, so both see the machine's other load of the same minutes.
* ``bench/token_verification.py`` (µs per bearer-token verification), run as it is in a
  child process when it exists, its Markdown output kept for RESULTS.md.

Both run while no server is up, so the only other load is the machine's own.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from database import SEEDED_PASSWORD
from users.config import UsersSettings
from users.passwords import Passwords

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
TOKEN_VERIFICATION = BENCH_DIR / "token_verification.py"
HASH_REPEATS = 20


@dataclass(frozen=True)
class HashTiming:
    """Milliseconds per Argon2id hash and per verification, with the cost they were made at."""

    time_cost: int
    memory_kib: int
    parallelism: int
    hash_ms: tuple[float, ...]
    verify_ms: tuple[float, ...]

    @property
    def hash_median(self) -> float:
        """The usual time of one hash."""
        return statistics.median(self.hash_ms)

    @property
    def verify_median(self) -> float:
        """The usual time of one verification, which is what a login does."""
        return statistics.median(self.verify_ms)


def time_password_hash(settings: UsersSettings, repeats: int = HASH_REPEATS) -> HashTiming:
    """Time ``repeats`` hashes and verifications with the service's ``Passwords``, alternating."""
    passwords = Passwords(settings)
    stored = passwords.hash(SEEDED_PASSWORD)
    hash_ms, verify_ms = [], []
    for _ in range(repeats):
        hash_ms.append(_milliseconds(lambda: passwords.hash(SEEDED_PASSWORD)))
        verify_ms.append(_milliseconds(lambda: passwords.verify(stored, SEEDED_PASSWORD)))
    return HashTiming(
        time_cost=settings.ARGON2_TIME_COST,
        memory_kib=settings.ARGON2_MEMORY_KIB,
        parallelism=settings.ARGON2_PARALLELISM,
        hash_ms=tuple(hash_ms),
        verify_ms=tuple(verify_ms),
    )


def _milliseconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def run_token_verification() -> str | None:
    """What ``bench/token_verification.py`` prints with its defaults; None when it is absent."""
    if not TOKEN_VERIFICATION.exists():
        return None
    completed = subprocess.run(
        [sys.executable, str(TOKEN_VERIFICATION.relative_to(ROOT))],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{TOKEN_VERIFICATION.name} failed:\n{completed.stderr}")
    return completed.stdout.strip()
