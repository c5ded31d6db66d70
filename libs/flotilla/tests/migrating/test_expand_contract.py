"""Renaming a column under load, as a rolling update does it: no request fails, nothing is lost.

The notes sample's three releases serve real HTTP requests from several client threads on one
PostgreSQL database while its migrations expand the table (0002), backfill it (0003) and
contract it (0004). Each release runs beside the next, as old and new pods do during a rolling
update; every client writes a note through one running release and reads it back through
another. Release 1 is retired before the backfill (it writes ``note`` only), release 2 before
the contract (it still writes ``note``).
"""

from __future__ import annotations

import itertools
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson
from flask import Flask
from sqlalchemy import create_engine, text

from flotilla.data.migrations import upgrade
from flotilla.testing import serve_app

AppFactory = Callable[..., Flask]
CLIENTS = 4
PHASE_SECONDS = 0.6


class Traffic:
    """Clients that write a note through one live release and read it through another."""

    def __init__(self) -> None:
        self.live: list[str] = []
        self.in_flight: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.failures: list[str] = []
        self.written: dict[int, str] = {}
        self.phase = "start"
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._numbers = itertools.count()

    def serve(self, url: str) -> None:
        """Send requests to ``url`` from now on."""
        with self._lock:
            self.live.append(url)

    def retire(self, url: str) -> None:
        """Send nothing more to ``url``, and wait for its requests in flight to end."""
        with self._lock:
            self.live.remove(url)
            self._lock.wait_for(lambda: self.in_flight[url] == 0, timeout=10)

    def enter(self, phase: str) -> None:
        """Count the requests from now on under ``phase``, after letting the last one run."""
        time.sleep(PHASE_SECONDS)
        self.phase = phase

    @contextmanager
    def running(self) -> Iterator[Traffic]:
        """Run the clients for the duration of the block."""
        clients = [threading.Thread(target=self._client) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        try:
            yield self
            time.sleep(PHASE_SECONDS)
        finally:
            self._stop.set()
            for client in clients:
                client.join()

    def _client(self) -> None:
        while not self._stop.is_set():
            number = next(self._numbers)
            writer, reader = self._pick(number), self._pick(number + 1)
            if writer is None or reader is None:
                time.sleep(0.01)
                continue
            try:
                self._write_and_read(writer, reader, f"note {number}")
                self.done[self.phase] += 1
            except Exception as error:  # every failure is counted, none hidden
                self.failures.append(f"{self.phase}: {error!r}")
            finally:
                self._release(writer, reader)

    def _pick(self, number: int) -> str | None:
        with self._lock:
            if not self.live:
                return None
            url = self.live[number % len(self.live)]
            self.in_flight[url] += 1
            return url

    def _release(self, *urls: str) -> None:
        with self._lock:
            for url in urls:
                self.in_flight[url] -= 1
            self._lock.notify_all()

    def _write_and_read(self, writer: str, reader: str, note: str) -> None:
        created = _call("POST", f"{writer}/notes", {"text": note})
        self.written[created["id"]] = note
        found = _call("GET", f"{reader}/notes/{created['id']}")
        assert found["text"] == note, (found, note)


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def test_old_and_new_releases_serve_through_expand_and_contract(
    database_url: str, notes_app: AppFactory
) -> None:
    releases = {number: notes_app(release=number) for number in (1, 2, 3)}
    migrator = notes_app()
    upgrade(migrator, "0001")
    traffic = Traffic()
    with ExitStack() as stack, traffic.running():
        servers = {n: ExitStack() for n in releases}
        for server in servers.values():
            stack.callback(server.close)

        def start(number: int) -> str:
            url = servers[number].enter_context(serve_app(releases[number]))
            traffic.serve(url)
            return url

        def stop(number: int, url: str) -> None:
            traffic.retire(url)
            servers[number].close()

        first = start(1)
        traffic.enter("expand under release 1")
        upgrade(migrator, "0002")
        traffic.enter("releases 1 and 2")
        second = start(2)
        traffic.enter("release 2")
        stop(1, first)
        traffic.enter("backfill under release 2")
        upgrade(migrator, "0003")
        traffic.enter("releases 2 and 3")
        start(3)
        traffic.enter("release 3")
        stop(2, second)
        traffic.enter("contract under release 3")
        upgrade(migrator, "0004")
        traffic.enter("release 3 after the contract")

    assert traffic.failures == []
    phases = ["expand under release 1", "releases 1 and 2", "release 2"]
    phases += ["backfill under release 2", "releases 2 and 3", "release 3"]
    phases += ["contract under release 3", "release 3 after the contract"]
    assert all(traffic.done[phase] >= 3 for phase in phases), traffic.done
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, body FROM notes")).all()
    finally:
        engine.dispose()
    assert {row.id: row.body for row in rows} == traffic.written
