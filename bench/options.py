"""The benchmark's command-line flags, each defaulting to a ``BENCH_*`` variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
SECTIONS = ("tokens", "logins", "reads", "orders", "rates")
"""What one run measures, in order; ``--only`` picks some."""
SYSTEM_SECTIONS = ("reads", "orders", "rates")
"""The sections measured on the system ``make run`` starts (the others run on their own)."""


@dataclass(frozen=True)
class Options:
    """How long and how hard each part is loaded, what is measured, where results go."""

    duration: int
    warmup: int
    rounds: int
    connections: int
    threads: int
    order_connections: tuple[int, ...]
    read_rate_per_cpu: int
    order_rate: int
    rate_duration: int
    drain_timeout: int
    read_orders: int
    users: int
    login_duration: int
    login_rounds: int
    sections: tuple[str, ...]
    shop_root: Path
    results: Path | None
    save: Path | None
    before: Path | None

    @property
    def system(self) -> bool:
        """Whether any section needs the system running."""
        return any(section in SYSTEM_SECTIONS for section in self.sections)


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command-line flags, each defaulting to a ``BENCH_*`` variable, then to a fixed value."""
    args = _parser().parse_args(argv)
    quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    shop_root = args.shop_root.resolve()
    chosen = args.only or (SYSTEM_SECTIONS if shop_root != ROOT else SECTIONS)
    whole = not args.only and shop_root == ROOT and not quick
    return Options(
        duration=2 if quick else args.duration,
        warmup=1 if quick else args.warmup,
        rounds=1 if quick else args.rounds,
        connections=args.connections,
        threads=args.threads,
        order_connections=tuple(int(n) for n in args.order_connections.split(",")),
        read_rate_per_cpu=args.read_rate,
        order_rate=args.order_rate,
        rate_duration=5 if quick else args.rate_duration,
        drain_timeout=args.drain_timeout,
        read_orders=args.read_orders,
        users=args.users,
        login_duration=3 if quick else args.login_duration,
        login_rounds=1 if quick else args.login_rounds,
        sections=tuple(section for section in SECTIONS if section in chosen),
        shop_root=shop_root,
        # Only a whole run of this checkout replaces the figures in RESULTS.md.
        results=RESULTS_PATH if whole and not args.no_results else None,
        save=args.save,
        before=args.before,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Measure the shop as make run starts it.")
    _flag(parser, "--duration", "BENCH_DURATION", 8, "seconds of each measured wrk run")
    _flag(parser, "--warmup", "BENCH_WARMUP", 2, "seconds of load before each measured run")
    _flag(parser, "--rounds", "BENCH_ROUNDS", 3, "rounds of reads and of orders")
    _flag(parser, "--connections", "BENCH_CONNECTIONS", 32, "wrk connections of the reads")
    _flag(parser, "--threads", "BENCH_THREADS", 2, "wrk threads")
    parser.add_argument(
        "--order-connections",
        default=os.environ.get("BENCH_ORDER_CONNECTIONS") or "8,32",
        help="wrk connections placing orders, comma-separated (8,32)",
    )
    _flag(parser, "--read-rate", "BENCH_READ_RATE", 500, "k6 reads per second per vCPU")
    _flag(parser, "--order-rate", "BENCH_ORDER_RATE", 100, "k6 orders per second")
    _flag(parser, "--rate-duration", "BENCH_RATE_DURATION", 20, "seconds of each k6 run")
    _flag(parser, "--drain-timeout", "BENCH_DRAIN_TIMEOUT", 120, "seconds to wait for e-mails")
    _flag(parser, "--read-orders", "BENCH_READ_ORDERS", 200, "orders placed for the reads")
    _flag(parser, "--users", "BENCH_USERS", 10_000, "users seeded for the logins")
    _flag(parser, "--login-duration", "BENCH_LOGIN_DURATION", 15, "seconds per login run")
    _flag(parser, "--login-rounds", "BENCH_LOGIN_ROUNDS", 3, "rounds of logins")
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 2 s runs, 5 s rates: a smoke test"
    )
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="measure only this (repeatable)"
    )
    parser.add_argument(
        "--shop-root",
        type=Path,
        default=Path(os.environ.get("BENCH_SHOP_ROOT") or ROOT),
        help="measure the shop of another checkout (its make sync done); default: this one",
    )
    parser.add_argument("--save", type=Path, help="write the headline figures to this JSON file")
    parser.add_argument("--before", type=Path, help="a --save file to show as 'before'")
    parser.add_argument("--no-results", action="store_true", help="print only; keep RESULTS.md")
    return parser


def _flag(
    parser: argparse.ArgumentParser, name: str, variable: str, default: int, doc: str
) -> None:
    value = int(os.environ.get(variable) or default)
    parser.add_argument(name, type=int, default=value, help=f"{doc} ({variable}, {default})")
