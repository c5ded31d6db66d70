"""Contract tests from a service's own OpenAPI document, as an outside tester runs them.

:func:`check_contract` runs schemathesis' engine — the one behind ``schemathesis run
--checks all`` — against the app served over real HTTP: every phase (the document's
examples, coverage of each parameter's edges, property-based fuzzing, stateful sequences),
valid and invalid data, and every check (no server error, documented statuses, content
types, headers and bodies, invalid data refused, valid data accepted, unsupported methods,
ignored credentials, ...). A fixed seed and derandomized generation make a run the same
every time, so a failure seen in CI is seen again on a laptop.

:func:`check_hostile_inputs` sends what schemathesis does not generate, to every route:
JSON nested far too deep, lone surrogates and invalid UTF-8 in bodies, queries and
headers. Each must be refused with a 4xx problem, never a 5xx.

Imported from here, not re-exported by :mod:`flotilla.testing`, so schemathesis (a test
dependency) is loaded only by the tests that use it.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import schemathesis
from flask import Flask
from schemathesis.checks import load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from flotilla.testing.wsgi import serve_app
from flotilla.web.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_PREFIX

SEED = 20_261_206
"""Every run generates the same inputs: a failure in CI is reproduced by running the test."""

UNDESCRIBED_REFUSALS = frozenset({"invalid-cursor"})
"""Problem codes that refuse a value no schema can describe: a cursor only the service issues.

A schema-valid cursor the service never issued is refused (400) by design, so schemathesis'
``positive_data_acceptance`` check is not held against these answers; every other check is.
A service adds its own (``refusals_by_state``): a product that does not exist is refused
with a 422 however well-formed its id.
"""

HOSTILE_QUERY_VALUES = ("%ED%A0%80", "%FF", "%00", "%C0%AF")
"""A UTF-8-encoded lone surrogate, a byte that is never UTF-8, NUL and an overlong slash."""

HOSTILE_HEADER_VALUE = b"\xed\xa0\x80\xff\x80"
"""Bytes that are not UTF-8 (a server hands them to the app as Latin-1 text)."""

HOSTILE_HEADERS = (
    "Authorization",
    "X-Request-ID",
    "Idempotency-Key",
    "X-Deadline-Ms",
    "traceparent",
)


def check_contract(
    app: Flask,
    *,
    headers: Mapping[str, str] | None = None,
    refusals_by_state: Collection[str] = (),
    waived_checks: Mapping[str, str] | None = None,
    max_examples: int = 25,
) -> None:
    """Run every schemathesis phase and check against ``app``; fail listing each failure.

    ``headers`` go with every call: an administrator's token lets protected operations run
    their logic instead of stopping at 401; without one, the same run checks what an
    anonymous caller gets. ``refusals_by_state`` are problem codes (``product-unavailable``)
    that refuse schema-valid input for what the database holds, see
    :data:`UNDESCRIBED_REFUSALS`. ``waived_checks`` maps a check's name to why the service
    does otherwise by design; a waived check's failures are not reported. ``max_examples``
    bounds the fuzzing phase per operation, and so the run's time (the coverage phase adds
    its own cases, a few dozen per operation).
    """
    load_all_checks()
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": dict(headers or {}),
            "generation": {
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
        }
    )
    config.projects.override.checks.update(included_check_names=["all"])
    waiver = _Waiver(UNDESCRIBED_REFUSALS | set(refusals_by_state), frozenset(waived_checks or ()))
    with serve_app(app) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
        problems = list(_failures(from_schema(schema).execute(), waiver))
    assert not problems, "The service breaks its contract:\n" + "\n".join(problems)


@dataclass(frozen=True)
class _Waiver:
    """Which failures are by design: refusals of undescribable values, and waived checks."""

    refusals: frozenset[str]
    checks: frozenset[str]

    def covers(self, check: str, interaction: Any) -> bool:
        if check in self.checks:
            return True
        return check == "positive_data_acceptance" and _problem_code(interaction) in self.refusals


def _failures(stream: Iterator[events.EngineEvent], waiver: _Waiver) -> Iterator[str]:
    """A line for each failed check or engine error in ``stream``, deduplicated."""
    seen: set[str] = set()
    for event in stream:
        for line in _describe(event, waiver):
            if line not in seen:
                seen.add(line)
                yield line


def _describe(event: events.EngineEvent, waiver: _Waiver) -> Iterator[str]:
    if isinstance(event, events.NonFatalError):
        yield f"engine error: {event.info.format()}"
    if isinstance(event, events.FatalError):
        yield f"engine stopped: {event.exception!r}"
    if not isinstance(event, events.ScenarioFinished) or event.status is Status.SUCCESS:
        return
    recorder = event.recorder
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                interaction = recorder.interactions.get(case_id)
                if waiver.covers(check.name, interaction):
                    continue
                sent = _exchange(interaction)
                yield (
                    f"[{event.phase.value}] {recorder.label}: {check.name}: {failure.title}"
                    f" ({failure.message.splitlines()[0] if failure.message else ''}) — {sent}"
                )


def _problem_code(interaction: Any) -> str | None:
    """The code of the problem answered (``invalid-cursor``), if the answer is one."""
    response = interaction.response if interaction is not None else None
    if response is None or not response.content:
        return None
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    kind = problem.get("type") if isinstance(problem, dict) else None
    return kind.removeprefix(PROBLEM_TYPE_PREFIX) if isinstance(kind, str) else None


def _exchange(interaction: Any) -> str:
    """The request and the answer's status and start, to see at once what went wrong."""
    if interaction is None:
        return "?"
    request, response = interaction.request, interaction.response
    sent = f"{request.method} {request.uri} body={(request.body or b'')[:120]!r}"
    if response is None:
        return sent
    return f"{sent} → {response.status_code} {(response.content or b'')[:160]!r}"


@dataclass(frozen=True)
class Answer:
    """What one hostile request got back."""

    request: str
    status: int
    content_type: str


def check_hostile_inputs(app: Flask, *, headers: Mapping[str, str] | None = None) -> None:
    """Send every route of ``app``'s document the inputs of :func:`hostile_requests`.

    Each must be answered below 500 and, when refused, with a problem document: the
    chassis refuses them once, before any view, so no service has to think of them.
    """
    document: dict[str, Any] = app.test_client().get("/openapi.json").get_json()
    with serve_app(app) as base_url:
        answers = [
            _send(base_url, method, target, body, {**dict(headers or {}), **extra})
            for method, target, body, extra in hostile_requests(document)
        ]
    wrong = [answer for answer in answers if not _is_refusal_or_success(answer)]
    assert answers
    assert not wrong, "Hostile inputs not refused as a 4xx problem:\n" + "\n".join(
        f"{answer.request} → {answer.status} {answer.content_type}" for answer in wrong
    )


def hostile_requests(
    document: Mapping[str, Any],
) -> Iterator[tuple[str, str, bytes | None, dict[str, bytes | str]]]:
    """``(method, target, body, headers)`` of each hostile request to each operation."""
    for path, item in document["paths"].items():
        target = re.sub(r"\{[^}]+\}", "1", path)
        for key, operation in item.items():
            if key not in {"get", "post", "put", "patch", "delete"}:
                continue
            method = key.upper()
            for body in _hostile_bodies(_property_names(document, operation)):
                yield method, target, body, {"Content-Type": "application/json"}
            for name in _query_names(operation) or ["q"]:
                for value in HOSTILE_QUERY_VALUES:
                    yield method, f"{target}?{name}={value}", None, {}
            for header in HOSTILE_HEADERS:
                yield method, target, None, {header: HOSTILE_HEADER_VALUE}
            yield method, f"{target}/%ED%A0%80%FF", None, {}


def _hostile_bodies(names: list[str]) -> Iterator[bytes]:
    """Deep nesting (beyond Python's recursion limit, and beyond orjson's), then bad text."""
    yield b"[" * 1_000 + b"]" * 1_000
    yield b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    for text in (rb'"\ud800"', rb'"\udc00x"', b'"\xed\xa0\x80"', b'"\xff"'):
        fields = b",".join(b'"%s":%s' % (name.encode(), text) for name in names or ["name"])
        yield b"{" + fields + b"}"
        yield b"{" + text + b":1}"
        yield b"[" + text + b"]"


def _property_names(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[str]:
    """The top-level fields of the operation's JSON body, so each is sent the bad text."""
    content: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
    media: dict[str, Any] = next(iter(content.values()), {})
    schema: dict[str, Any] = media.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][str(schema["$ref"]).rsplit("/", 1)[-1]]
    return sorted(schema.get("properties", {}))


def _query_names(operation: Mapping[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    return [parameter["name"] for parameter in parameters if parameter.get("in") == "query"]


def _send(
    base_url: str, method: str, target: str, body: bytes | None, headers: Mapping[str, Any]
) -> Answer:
    """One request over a raw connection, so bytes no HTTP library would send get through."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        response.read()
        content_type = response.getheader("Content-Type", "")
        return Answer(f"{method} {target} {_summary(body, headers)}", response.status, content_type)
    finally:
        connection.close()


def _summary(body: bytes | None, headers: Mapping[str, Any]) -> str:
    sent = {name: value for name, value in headers.items() if name != "Authorization"}
    return f"body={(body or b'')[:40]!r} headers={sent}"


def _is_refusal_or_success(answer: Answer) -> bool:
    if answer.status < 400:
        return True
    return answer.status < 500 and answer.content_type.startswith(PROBLEM_MEDIA_TYPE)
