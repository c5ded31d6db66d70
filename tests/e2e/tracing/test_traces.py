"""One order, one trace: from the request nginx forwards to the e-mail the worker sends.

The request goes through nginx, carrying a ``traceparent`` as a client sends it (nginx
forwards it untouched), so the trace is known in advance; every span the processes export
for it must hang together: orders' server span under the caller's, its calls to users and
catalog under it, each callee's server span under the call, statements and Redis commands
under the work that ran them, and across the broker the outbox row, the relay's publish,
the worker's task and its SMTP send. The log lines of every process join on the same trace id.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable

from flotilla.testing import wait_until
from flotilla.testing.telemetry import ReceivedSpan

from .conftest import TracedShop

Spans = list[ReceivedSpan]


def new_trace() -> tuple[str, str]:
    """A trace id and the span id of the caller's span in it, as a client would send them."""
    return secrets.token_hex(16), secrets.token_hex(8)


def spans_of(shop: TracedShop, trace_id: str, until: Callable[[Spans], bool]) -> Spans:
    """The trace's spans once ``until`` holds for them, or after 30 s: the asserts then say
    what is missing. Each process exports every 100 ms, in whatever order they come."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: until(shop.receiver.spans(trace_id)), timeout=30)
    return shop.receiver.spans(trace_id)


def whole(caller: str) -> Callable[[Spans], bool]:
    """Delivered, and every span's parent received (or the caller's span): no gap left."""

    def received(spans: Spans) -> bool:
        ids = {span.span_id for span in spans} | {caller}
        return delivered(spans) and all(span.parent_id in ids for span in spans)

    return received


def one(spans: Spans, **wanted: str) -> ReceivedSpan:
    """The single span with these fields."""
    (found,) = matching(spans, **wanted)
    return found


def matching(spans: Spans, **wanted: str) -> Spans:
    """The spans with these fields."""
    return [span for span in spans if all(getattr(span, k) == v for k, v in wanted.items())]


def ancestors(spans: Spans, span: ReceivedSpan) -> list[str]:
    """Span ids from ``span``'s parent up to the first one not in ``spans``."""
    by_id = {each.span_id: each for each in spans}
    chain, parent = [], span.parent_id
    while parent:
        chain.append(parent)
        parent = by_id[parent].parent_id if parent in by_id else ""
    return chain


def is_sql(span: ReceivedSpan) -> bool:
    """A statement's span, under the old or the new database conventions."""
    return "postgresql" in {span.attributes.get("db.system"), span.attributes.get("db.system.name")}


def is_redis(span: ReceivedSpan) -> bool:
    """A Redis command's span."""
    return "redis" in {span.attributes.get("db.system"), span.attributes.get("db.system.name")}


def exported(shop: TracedShop, trace_id: str) -> set[str]:
    """The ids of the trace's spans received so far."""
    return {span.span_id for span in shop.receiver.spans(trace_id)}


def delivered(spans: Spans) -> bool:
    """The worker's task and its send have been exported."""
    return bool(matching(spans, name="send email")) and bool(matching(spans, kind="CONSUMER"))


def test_an_order_is_one_trace_across_every_process(traced_shop: TracedShop) -> None:
    trace_id, caller = new_trace()
    status, order = traced_shop.place_order(f"00-{trace_id}-{caller}-01")
    assert status == 201, order
    spans = spans_of(traced_shop, trace_id, whole(caller))

    root = one(spans, service="orders", kind="SERVER")
    assert root.parent_id == caller
    assert root.name == "POST /api/v1/orders"
    assert all(caller in [span.parent_id, *ancestors(spans, span)] for span in spans)
    for callee in ("users", "catalog"):
        served = matching(spans, service=callee, kind="SERVER")
        assert served, f"no server span of {callee}"
        for server in served:
            call = next(span for span in spans if span.span_id == server.parent_id)
            assert (call.service, call.kind) == ("orders", "CLIENT")
            assert call.attributes["peer.service"] == callee
            assert root.span_id in ancestors(spans, call)
        assert any(is_sql(span) for span in matching(spans, service=callee)), callee
    assert any(is_sql(span) for span in matching(spans, service="orders"))
    assert any(is_redis(span) for span in matching(spans, service="orders"))
    assert all(span.status != "ERROR" for span in spans), [s for s in spans if s.status == "ERROR"]

    row = one(spans, service="orders", name="create order.placed")
    assert (row.kind, row.parent_id != "") == ("PRODUCER", True)
    assert any(is_sql(span) and span.parent_id == row.span_id for span in spans)
    publish = one(spans, service="orders-relay", name="publish order.placed")
    assert (publish.kind, publish.parent_id) == ("PRODUCER", row.span_id)
    task = one(spans, service="notifications", kind="CONSUMER")
    assert task.parent_id == publish.span_id
    send = one(spans, service="notifications", name="send email")
    assert task.span_id in ancestors(spans, send)
    assert traced_shop.mail.to(traced_shop.email)


def test_log_lines_of_one_order_join_on_its_trace_id(traced_shop: TracedShop) -> None:
    trace_id, caller = new_trace()
    status, order = traced_shop.place_order(f"00-{trace_id}-{caller}-01")
    assert status == 201, order
    spans_of(traced_shop, trace_id, whole(caller))

    def joined() -> dict[str, list[dict[str, object]]]:
        return {
            process: [line for line in lines if line.get("trace_id") == trace_id]
            for process, lines in traced_shop.log_lines().items()
        }

    wait_until(lambda: all(joined().values()), timeout=10, what="a line of every process")
    lines = joined()
    assert set(lines) == {"users", "catalog", "orders", "relay", "worker"}
    logged = [(process, line) for process, found in lines.items() for line in found]
    try:
        wait_until(
            lambda: {line["span_id"] for _, line in logged} <= exported(traced_shop, trace_id),
            timeout=10,
        )
    except TimeoutError:
        spans = exported(traced_shop, trace_id)
        missing = [(process, line) for process, line in logged if line["span_id"] not in spans]
        raise AssertionError(f"lines naming a span never exported: {missing}") from None
    assert any(line["message"] == "e-mail sent" for line in lines["worker"])
    assert any(line["message"] == "event sent" for line in lines["relay"])


def test_an_open_breaker_is_an_error_in_the_trace(traced_shop: TracedShop) -> None:
    """Last of the module: it stops catalog."""
    traced_shop.stop_catalog()
    refused: list[ReceivedSpan] = []

    def breaker_refuses() -> bool:
        trace_id, caller = new_trace()
        status, problem = traced_shop.place_order(f"00-{trace_id}-{caller}-01")
        assert status >= 500, problem
        # orders' own server span ends after its answer is sent: wait for it, not just any.
        spans = spans_of(
            traced_shop,
            trace_id,
            lambda found: bool(matching(found, service="orders", kind="SERVER")),
        )
        refused[:] = [span for span in spans if span.attributes.get("error.type") == "breaker_open"]
        return bool(refused)

    wait_until(breaker_refuses, timeout=30, what="catalog's breaker to open")
    (call,) = refused
    assert (call.service, call.kind, call.status) == ("orders", "CLIENT", "ERROR")
    assert call.attributes["peer.service"] == "catalog"
    spans = traced_shop.receiver.spans(call.trace_id)
    root = one(spans, service="orders", kind="SERVER")
    assert root.status == "ERROR"
    assert (
        root.attributes.get("http.response.status_code", root.attributes.get("http.status_code"))
        == 503
    )
    assert root.span_id in ancestors(spans, call)
    assert not matching(spans, service="catalog")
