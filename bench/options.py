"""The benchmark's command-line flags, each defaulting to a ``BENCH_*`` variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
SECTIONS = ("reads", "logins", "orders")
"""What one run measures, in order; ``--only`` picks some."""


@dataclass(frozen=True)
class Options:
    """How hard and how long to load each target, and where the results go."""

    duration: int
    warmup: int
    rounds: int
    connections: int
    threads: int
    users: int
    login_duration: int
    login_rounds: int
    sections: tuple[str, ...]
    results: Path | None


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command-line flags, each defaulting to a ``BENCH_*`` variable, then to a fixed value."""
    parser = argparse.ArgumentParser(description="Load-test the services; see bench/.")
    parser.add_argument("--duration", type=int, default=_env_int("BENCH_DURATION", 4))
    parser.add_argument("--warmup", type=int, default=_env_int("BENCH_WARMUP", 1))
    parser.add_argument("--rounds", type=int, default=_env_int("BENCH_ROUNDS", 5))
    parser.add_argument("--connections", type=int, default=_env_int("BENCH_CONNECTIONS", 16))
    parser.add_argument("--threads", type=int, default=_env_int("BENCH_THREADS", 2))
    parser.add_argument("--users", type=int, default=_env_int("BENCH_USERS", 10_000))
    parser.add_argument("--login-duration", type=int, default=_env_int("BENCH_LOGIN_DURATION", 15))
    parser.add_argument("--login-rounds", type=int, default=_env_int("BENCH_LOGIN_ROUNDS", 3))
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 3 s, 1 s warm-up; the same for logins"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="measure only this section (repeatable); print only, keep RESULTS.md",
    )
    parser.add_argument("--no-results", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    return Options(
        duration=3 if quick else args.duration,
        warmup=1 if quick else args.warmup,
        rounds=1 if quick else args.rounds,
        connections=args.connections,
        threads=args.threads,
        users=args.users,
        login_duration=3 if quick else args.login_duration,
        login_rounds=1 if quick else args.login_rounds,
        sections=tuple(section for section in SECTIONS if section in (args.only or SECTIONS)),
        # A run of some sections must not replace the figures of the others in RESULTS.md.
        results=None if args.no_results or args.only else RESULTS_PATH,
    )


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)
