"""Local server processes: wait until one answers over HTTP, stop one by PID, read its log,
find its workers and what they use.

Shared by the test helpers (:mod:`flotilla.testing`), ``make run`` and ``make bench``, which
all start Gunicorn (or another server) as a child process and must neither wait forever for
one that died nor leave one running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


class ProcessExited(RuntimeError):
    """The server process ended while we waited for it to answer."""


def wait_for_http(
    url: str,
    *,
    timeout: float = 30.0,
    status: int = 200,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``url`` until it answers ``status``.

    Raises :class:`ProcessExited` as soon as ``process`` (if given) has ended, and
    ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProcessExited(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
                if response.status == status:
                    return
                last = response.status
        except urllib.error.HTTPError as error:
            last = error.code
        except OSError as error:  # refused while the server starts
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout:.0f}s (last: {last})")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 30.0) -> int:
    """SIGTERM ``process`` (graceful for Gunicorn), SIGKILL it if it outlives ``timeout``.

    Returns its exit code.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a server's log, for an error message."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started directly (a server's workers), from ``/proc``."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return found


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` used so far, user and system; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rpartition(")")[2].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def resident_bytes(pid: int | str = "self") -> int:
    """Resident memory of process ``pid`` (this one by default), shared pages included."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE_SIZE
