"""Real endpoints for what a service reports: OTLP/HTTP traces and Sentry envelopes.

Each is a small HTTP server on a free local port, run on a thread for the length of a
``with`` block, that decodes what the real SDKs send and keeps it for the test to read:
:class:`OtlpReceiver` the protobuf ``ExportTraceServiceRequest`` of the OpenTelemetry OTLP
exporter, :class:`SentryReceiver` the envelopes of sentry-sdk. Imported from here, not
re-exported by :mod:`flotilla.testing`.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, reduced to what a test of a span tree compares."""

    service: str
    name: str
    kind: str
    """``SERVER``, ``CLIENT``, ``PRODUCER``, ``CONSUMER`` or ``INTERNAL``."""
    trace_id: str
    span_id: str
    parent_id: str
    """Empty for a trace's root."""
    status: str
    """``UNSET``, ``OK`` or ``ERROR``."""
    attributes: dict[str, Any] = field(default_factory=dict)


class _Receiver:
    """A threaded HTTP server that hands each POST body to ``accept``."""

    def __init__(self, accept: Callable[[str, bytes], bytes]) -> None:
        self._lock = threading.Lock()
        handler = _handler_class(accept)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(accept: Callable[[str, bytes], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer = accept(self.path, _decoded(body, self.headers.get("Content-Encoding", "")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test reads what was received, not a line per request."""

    return Handler


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class OtlpReceiver(_Receiver):
    """An OTLP/HTTP traces endpoint: point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at :attr:`url`."""

    def __init__(self) -> None:
        super().__init__(self._accept)
        self._spans: list[ReceivedSpan] = []

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        """Every span received so far, or those of ``trace_id``."""
        with self._lock:
            return [span for span in self._spans if trace_id in {None, span.trace_id}]

    def _accept(self, path: str, body: bytes) -> bytes:
        if path.rstrip("/").endswith("/v1/traces"):
            request = ExportTraceServiceRequest.FromString(body)
            received = [
                _received(span, _service(resource_spans.resource.attributes))
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]
            with self._lock:
                self._spans.extend(received)
        return bytes(ExportTraceServiceResponse().SerializeToString())


def _service(attributes: Any) -> str:
    for attribute in attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""


def _received(span: Span, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        name=span.name,
        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        attributes={item.key: _value(item.value) for item in span.attributes},
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class SentryReceiver(_Receiver):
    """A Sentry ingestion endpoint; :meth:`dsn` is the DSN that sends envelopes here."""

    def __init__(self) -> None:
        super().__init__(self._accept)
        self.raw: list[bytes] = []
        """Every envelope, decompressed, as sent: what must never hold a secret."""

    def dsn(self, project: int = 1) -> str:
        """A DSN of this endpoint (the key is not checked)."""
        return self.url.replace("http://", "http://public@") + f"/{project}"

    def events(self) -> list[dict[str, Any]]:
        """The items of type ``event`` (errors) received so far."""
        with self._lock:
            envelopes = list(self.raw)
        return [item for envelope in envelopes for item in _items(envelope, "event")]

    def _accept(self, _path: str, body: bytes) -> bytes:
        with self._lock:
            self.raw.append(body)
        return b"{}"


def _items(envelope: bytes, kind: str) -> list[dict[str, Any]]:
    """The JSON payloads of ``kind`` in an envelope: a header line, then items, each a header
    line and a payload of its ``length`` (else up to the next newline)."""
    found = []
    position = envelope.index(b"\n") + 1
    while position < len(envelope):
        end = envelope.find(b"\n", position)
        header = orjson.loads(envelope[position : end if end >= 0 else None])
        start = end + 1
        stop = start + header["length"] if "length" in header else envelope.find(b"\n", start)
        stop = len(envelope) if stop < 0 else stop
        if header.get("type") == kind:
            found.append(orjson.loads(envelope[start:stop]))
        position = stop + 1
    return found
