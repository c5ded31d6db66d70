"""wrk: find or install it, run it with a Lua script, parse what the script's ``done()`` prints."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass(frozen=True)
class WrkRun:
    """What wrk's ``done()`` reported for one run (see frontdoor.lua)."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: tuple[int, int, int, int]
    """connect, read, write, timeout."""
    non_2xx: int


def ensure_wrk() -> str:
    """The path of ``wrk``, installed with apt-get when missing (the machines run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    print("wrk is missing; running: " + " ".join(install), flush=True)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        print("install failed; running: apt-get update, then the install again", flush=True)
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is still not on PATH after apt-get install")
    return found


def wrk_version(wrk: str) -> str:
    """wrk's version, from the banner ``wrk -v`` prints (to stdout or stderr, by build)."""
    banner = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (banner.stdout or banner.stderr).split(" [")[0].removeprefix("wrk ").strip()


def run_script(
    wrk: str,
    *,
    script: Path,
    base_url: str,
    seconds: int,
    threads: int,
    connections: int,
    script_args: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> str:
    """wrk's standard output for ``script``; ``env`` joins wrk's environment (for secrets)."""
    command = [
        *wrk_command(wrk, seconds=seconds, threads=threads, connections=connections, script=script),
        base_url,
        "--",
        *script_args,
    ]
    environment = {**os.environ, **(env or {})}
    completed = subprocess.run(
        command, capture_output=True, text=True, check=True, cwd=ROOT, env=environment
    )
    return completed.stdout


def wrk_command(
    wrk: str, *, seconds: int, threads: int, connections: int, script: Path
) -> list[str]:
    """wrk and its flags, up to the URL; the same for every target."""
    return [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout=2s",
        f"--script={script.relative_to(ROOT)}",
    ]


def script_result(output: str, name: str) -> dict[str, Any]:
    """The JSON object of the ``<name> {...}`` line a script's ``done()`` printed."""
    match = re.search(rf"^{name} (\{{.*\}})$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {name} line:\n{output}")
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def parse_wrk(output: str) -> WrkRun:
    """The ``BENCH_RESULT {...}`` line of wrk's output as a :class:`WrkRun`."""
    data = script_result(output, "BENCH_RESULT")
    return WrkRun(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=(data["connect"], data["read"], data["write"], data["timeout"]),
        non_2xx=data["non_2xx"],
    )
