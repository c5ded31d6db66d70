"""Which component a process is, from command lines and ancestry only (no process started)."""

from __future__ import annotations

import pytest

from components import POSTGRES, POSTGRES_SERVER, RUNNER, Classifier, name_from_argv, server_of
from procfs import ProcessStat, parse_stat

RUNNER_PID = 100


def stat(pid: int, ppid: int, comm: str = "python", state: str = "S") -> ProcessStat:
    return ProcessStat(pid, ppid, comm, state, own_s=1.0, children_s=0.0, started=pid)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (
            [
                "/v/bin/python",
                "-m",
                "gunicorn",
                "-c",
                "python:flotilla.serving.gunicorn",
                "users.wsgi:app",
            ],
            "users (web)",
        ),
        (
            ["/v/bin/python", "/v/bin/granian", "--interface", "wsgi", "catalog.wsgi:app"],
            "catalog (web)",
        ),
        (
            ["/v/bin/python", "-m", "flask", "--app", "orders", "outbox", "relay"],
            "orders outbox relay",
        ),
        (
            [
                "/v/bin/python",
                "-m",
                "flask",
                "--app",
                "orders",
                "orders",
                "recover",
                "--interval",
                "10",
            ],
            "orders recovery",
        ),
        (
            ["/v/bin/python", "-m", "flask", "--app", "notifications", "tasks", "worker"],
            "notifications worker",
        ),
        (["nginx: master process /usr/sbin/nginx -c /tmp/nginx.conf"], "nginx"),
    ],
)
def test_components_are_named_by_command_line_whatever_the_server(
    argv: list[str], name: str
) -> None:
    assert name_from_argv(argv) == name


def test_the_server_is_the_module_run_or_the_program() -> None:
    assert server_of(["/v/bin/python", "-m", "gunicorn", "users.wsgi:app"]) == "gunicorn"
    assert server_of(["/v/bin/granian", "--interface", "wsgi", "users.wsgi:app"]) == "granian"


def test_parse_stat_reads_a_command_name_with_spaces_and_parentheses() -> None:
    line = "42 (my (odd) name) S 7 42 42 0 -1 4194304 1 0 0 0 250 150 30 20 20 0 1 0 9876 0 0"
    parsed = parse_stat(line)
    assert (parsed.pid, parsed.ppid, parsed.comm, parsed.started) == (42, 7, "my (odd) name", 9876)
    assert parsed.own_s == pytest.approx(4.0)
    assert parsed.children_s == pytest.approx(0.5)


def classifier(argv: dict[int, list[str]]) -> Classifier:
    return Classifier({RUNNER_PID: None}, "bench_ab12_", lambda pid: argv.get(pid, []))


def member(found: Classifier, pid: int, stats: dict[int, ProcessStat]) -> tuple[str, bool, int]:
    """Component name, worker flag and top process of ``pid`` (which must be the run's)."""
    membership = found.classify(stats[pid], stats)
    assert membership is not None
    return membership.component.name, membership.worker, membership.top


def test_below_the_runner_a_top_process_names_the_component_and_its_children_serve() -> None:
    family = [(RUNNER_PID, 1), (200, 100), (201, 200), (202, 200), (300, 100), (999, 1)]
    stats = {pid: stat(pid, ppid) for pid, ppid in family}
    gunicorn = ["python", "-m", "gunicorn", "orders.wsgi:app"]
    relay = ["python", "-m", "flask", "--app", "users", "outbox", "relay"]
    found = classifier({200: gunicorn, 300: relay})
    assert member(found, 200, stats) == ("orders (web)", False, 200)
    assert member(found, 201, stats) == ("orders (web)", True, 200)
    assert member(found, 300, stats)[0] == "users outbox relay"
    assert member(found, RUNNER_PID, stats)[0] == RUNNER
    assert found.classify(stats[999], stats) is None  # someone else's process


def test_a_baseline_tree_takes_its_label_and_a_resource_tracker_is_no_worker() -> None:
    stats = {s.pid: s for s in (stat(500, 1), stat(501, 500), stat(502, 500))}
    found = classifier({502: ["python", "-c", "from multiprocessing.resource_tracker import main"]})
    with found.counting(500, "FastAPI"):
        assert member(found, 501, stats) == ("FastAPI", True, 500)
        assert member(found, 502, stats) == ("FastAPI", False, 500)
    assert 500 not in found.families


@pytest.mark.parametrize(
    ("title", "component"),
    [
        ("postgres: 15/main: postgres bench_ab12_orders 127.0.0.1(5544) idle", POSTGRES),
        ("postgres: 15/main: autovacuum worker bench_ab12_catalog", POSTGRES),
        ("postgres: 15/main: postgres other_tests 127.0.0.1(5545) idle", None),
        ("postgres: 15/main: checkpointer", POSTGRES_SERVER),
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", POSTGRES_SERVER),
    ],
)
def test_postgres_backends_count_only_for_the_runs_databases(
    title: str, component: str | None
) -> None:
    backend = stat(700, 600, comm="postgres")
    membership = classifier({700: title.split(" ")}).classify(backend, {700: backend})
    assert (membership.component.name if membership else None) == component


def test_a_backend_not_yet_titled_is_looked_at_again_until_it_says_its_database() -> None:
    postmaster = stat(600, 1, comm="postgres")
    backend = stat(701, 600, comm="postgres")
    stats = {600: postmaster, 701: backend}
    titles = {701: ["/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql"]}
    found = classifier(titles)
    assert found.classify(backend, stats) is None
    titles[701] = ["postgres: 15/main: postgres bench_ab12_users 127.0.0.1(5546) idle"]
    membership = found.classify(backend, stats)
    assert membership is not None
    assert membership.component.name == POSTGRES
