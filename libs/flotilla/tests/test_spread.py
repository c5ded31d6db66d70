"""``flotilla.serving.serve.spread``: how a server's load spreads over its workers, measured."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flotilla.serving.serve.spread import Spread, SpreadSampler, imbalance, shares

from .web_servers import get, start_server


def test_shares_and_imbalance() -> None:
    assert shares({1: 3.0, 2: 1.0}) == {1: 0.75, 2: 0.25}
    assert shares({1: 0.0}) == {}
    assert imbalance({1: 3.0, 2: 1.0}, workers=2) == 1.5
    assert imbalance({1: 1.0, 2: 1.0}, workers=2) == 1.0
    assert imbalance({1: 5.0}, workers=2) == 2.0  # one worker did everything
    assert imbalance({}, workers=2) == 0.0


def test_a_load_swapping_between_workers_shows_in_the_intervals() -> None:
    swapping = [{1: 1.0, 2: 0.0}, {1: 0.0, 2: 1.0}, {1: 1.0, 2: 0.0}, {1: 0.0, 2: 1.0}]
    spread = Spread(workers=2, cpu={1: 2.0, 2: 2.0}, requests={}, intervals=swapping)
    assert spread.cpu_imbalance == 1.0
    assert spread.interval_imbalance == 2.0


@pytest.mark.process
def test_the_sampler_counts_each_workers_requests_on_a_real_server(tmp_path: Path) -> None:
    server = start_server("granian", tmp_path, workers=2)
    try:
        with (
            SpreadSampler(server.pid, metrics_dir=tmp_path / "metrics", interval=0.1) as sampler,
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            answers = list(pool.map(lambda _: get(f"{server.url}/pid"), range(200)))
        command = [sys.executable, "-m", "flotilla.serving.serve.spread", "--pid", str(server.pid)]
        printed = subprocess.run(
            [*command, "--seconds", "0.3", "--metrics-dir", str(tmp_path / "metrics")],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        server.stop()

    spread = sampler.result
    served: dict[int, int] = {}
    for _, body in answers:
        served[body["pid"]] = served.get(body["pid"], 0) + 1
    assert spread.workers == 2
    assert spread.requests == served
    assert len(spread.cpu) == 2  # both workers sampled, busy or not
    assert set(served) <= set(spread.cpu)
    assert 1.0 <= spread.request_imbalance <= 2.0
    assert json.loads(printed.stdout)["workers"] == 2
