"""Markdown of the sections measured apart from the system: logins, a hash, token checks."""

from __future__ import annotations

from in_process import HashTiming
from logins import CASES, CONNECTIONS, LOG_IN_SCRIPT, RIGHT_PASSWORD, LoginCase, LoginMeasurement
from options import Options
from wrk import wrk_command

LOGIN_HEADER = (
    "| login case (status) | wrk | logins | p50 ms (each round's) | p95 ms | p99 ms "
    "| p50 / right | p95 / right | unexpected status |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|"
)


def render_logins(logins: LoginMeasurement, options: Options) -> str:
    """The login table, one row per case and concurrency, and how it was measured."""
    wrk_line = " ".join(
        wrk_command(
            "wrk", seconds=options.login_duration, threads=1, connections=1, script=LOG_IN_SCRIPT
        )
    )
    cases = " ".join(
        f"{case.key} {case.login_prefix} {case.password} {case.expected_status}" for case in CASES
    )
    errors = "; ".join(
        f"-c{connections}: "
        + "/".join(str(sum(r.socket_errors[i] for r in logins.at(connections))) for i in range(4))
        for connections in CONNECTIONS
    )
    conditions = (
        "The users service alone under Gunicorn (the chassis config, 2 workers x 4 threads, "
        "access log off, its own rate limits off), on a database of its own with seeded users, "
        "started once. Each request's case drawn at random; "
        f"{options.warmup} s warm-up at 2 connections, then {options.login_rounds} round(s) of "
        f"{options.login_duration} s at 1 and at 2 connections (`-t1 -c1`, `-t2 -c2`; the "
        f"other order in every second round): `{wrk_line} http://127.0.0.1:PORT -- LOW HIGH "
        f"{cases}`. Percentiles over every login of every round; ratios to the right "
        f"password at the same concurrency. wrk socket errors c/r/w/t: {errors}. Gunicorn "
        f"workers restarted meanwhile: {logins.worker_restarts}."
    )
    rows = [
        render_login_row(case, connections, logins) for connections in CONNECTIONS for case in CASES
    ]
    return "\n".join([conditions, "", LOGIN_HEADER, *rows])


def render_login_row(case: LoginCase, connections: int, logins: LoginMeasurement) -> str:
    """One case at one concurrency, with its ratios to the right password's."""
    figures = logins.figures(case, connections)
    right = logins.figures(RIGHT_PASSWORD, connections)
    rounds = " / ".join(f"{p50:.1f}" for p50 in figures.round_p50_ms)
    cells = [
        f"{case.key}: {case.label} ({case.expected_status})",
        f"-t{connections} -c{connections}",
        f"{figures.count:,}",
        f"{figures.p50_ms:.1f} ({rounds})",
        f"{figures.p95_ms:.1f}",
        f"{figures.p99_ms:.1f}",
        f"{figures.p50_ms / right.p50_ms:.2f}",
        f"{figures.p95_ms / right.p95_ms:.2f}",
        str(figures.unexpected),
    ]
    return "| " + " | ".join(cells) + " |"


def render_hash(hashing: HashTiming, logins: LoginMeasurement | None) -> str:
    """One hash in-process, and its share of a right-password login at one connection."""
    text = (
        f"One Argon2id hash in the runner's process with the service's `Passwords` "
        f"(time_cost={hashing.time_cost}, memory_cost={hashing.memory_kib:,} KiB, "
        f"parallelism={hashing.parallelism}), {len(hashing.hash_ms)} times, alternating with "
        f"a verification, just before the logins, with no server running: hash "
        f"{hashing.hash_median:.1f} ms, "
        f"verify {hashing.verify_median:.1f} ms (medians; verify "
        f"{min(hashing.verify_ms):.1f} to {max(hashing.verify_ms):.1f} ms)."
    )
    if logins is None:
        return text
    connections = min(CONNECTIONS)
    login_p50 = logins.figures(RIGHT_PASSWORD, connections).p50_ms
    share = hashing.verify_median / login_p50
    return (
        f"{text} A right-password login at `-c{connections}` took {login_p50:.1f} ms at p50, "
        f"so the verification is {share:.0%} of it."
    )


def render_token_verification(printed: str) -> str:
    """What ``bench/token_verification.py`` printed, under the command that printed it."""
    return (
        "`python bench/token_verification.py` (its defaults), run by `make bench` before the "
        f"system started:\n\n{printed}"
    )
