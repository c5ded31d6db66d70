"""Sentry error reports, opt-in by ``SENTRY_DSN``: every unexpected error, without secrets.

sentry-sdk reports what the chassis logs as unexpected (a 500, a failing task) with its
stack, locals and request. Its Flask, Celery and SQLAlchemy integrations are enabled
explicitly; release, environment and sample rates come from the settings. Each event is
tagged with the request id and trace id, so a report leads to the log lines and the trace.

What an event may carry is decided here, not left to defaults: no personal data (the SDK's
default: no cookies, no ``Authorization``, no user IP), Sentry's own scrubber run
recursively with a longer deny list, and :func:`scrub` then removes, anywhere in the event,
any value under a sensitive key, any ``"password": "..."`` pair left in a raw body, and the
value of every secret setting (those declared ``repr=False``, and passwords inside
``*_URL`` settings) and of every credential the request carried (its ``Authorization``
header, a ``password`` field of its body): a secret that reached a local variable or a
message is cut out too.

sentry-sdk and its integrations are imported by :func:`install` only when ``SENTRY_DSN`` is
set: its Celery integration imports Celery, and a process that reports nowhere would carry
both (about 10 MiB in a web worker) for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import has_request_context, request

from flotilla.config import ServiceSettings
from flotilla.observability import tracing
from flotilla.observability.propagation import current_traceparent, parse_traceparent
from flotilla.web import context

if TYPE_CHECKING:
    from sentry_sdk.types import Event

FILTERED = "[Filtered]"
SENSITIVE_KEY = re.compile(
    r"authorization|password|passwd|secret|token|cookie|api[-_]?key|dsn|signing|credential"
    r"|private[-_]?key",
    re.IGNORECASE,
)
_RAW_PAIR = re.compile(
    r'("[^"]*(?:password|passwd|secret|token)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)
_SHORTEST_SECRET = 6
"""Shorter values are not searched for: they would cut ordinary words out of events."""
DENYLIST_EXTRA = ("signing_key", "private_key", "dsn", "credential", "jwt")
"""Keys Sentry's scrubber filters besides its own default deny list."""


def install(settings: ServiceSettings, version: str) -> None:
    """Start sentry-sdk for this process when ``SENTRY_DSN`` is set; else do nothing.

    Safe before a fork: the SDK's sending thread is started on first use, in each process.
    """
    if not settings.SENTRY_DSN:
        return
    # Imported here: see the module's docstring.
    import sentry_sdk  # noqa: PLC0415
    from sentry_sdk.integrations.celery import CeleryIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.flask import FlaskIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration  # noqa: PLC0415
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber  # noqa: PLC0415

    secrets = secret_values(settings)

    def before_send(event: Event, _hint: dict[str, Any]) -> Event:
        return tag(scrub(event, secrets | request_secrets()))

    sentry_sdk.init(
        dsn=settings.SENTRY_DSN,
        release=settings.SENTRY_RELEASE or f"{settings.SERVICE_NAME}@{version}",
        environment=settings.SENTRY_ENVIRONMENT or settings.ENVIRONMENT.value,
        sample_rate=settings.SENTRY_SAMPLE_RATE,
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        # No send_default_pii and no data_collection: the SDK's default sends no personal
        # data (no cookies, Authorization or client address); naming either option is
        # deprecated or, for data_collection, turns the event scrubber below off.
        integrations=[FlaskIntegration(), CeleryIntegration(), SqlalchemyIntegration()],
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *DENYLIST_EXTRA], recursive=True),
        before_send=before_send,
        before_send_transaction=before_send,
        server_name=settings.SERVICE_NAME,  # not the host name: a pod's says nothing useful
    )


def secret_values(settings: ServiceSettings) -> frozenset[str]:
    """Values of the secret settings: fields declared ``repr=False``, passwords in URLs."""
    found: set[str] = set()
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if not field.repr:
            found.update(_strings(value))
        if name.endswith("_URL") and isinstance(value, str) and "@" in value:
            password = urlsplit(value).password
            found.update([password] if password else [])
    return frozenset(value for value in found if len(value) >= _SHORTEST_SECRET)


def request_secrets() -> frozenset[str]:
    """What the request being served carries under sensitive names: its credentials.

    The scrubbers filter these where they are named (the header, the body's field); a view
    may also have copied one into a message or a variable, so each value is cut out of every
    string of the event too. Read from the request, as Sentry's scrubber has already
    replaced them in the event by the time it reaches ``before_send``.
    """
    if not has_request_context():
        return frozenset()
    found = {
        part
        for name, value in request.headers.items()
        if SENSITIVE_KEY.search(name)
        for part in (value, value.rpartition(" ")[2])  # "Bearer <token>", and the token
    }
    found.update(_sensitive_values(request.get_json(silent=True)))
    if request.form:
        found.update(_sensitive_values(request.form.to_dict()))
    return frozenset(value for value in found if len(value) >= _SHORTEST_SECRET)


def _sensitive_values(value: Any) -> Iterator[str]:
    """Strings under sensitive keys anywhere in ``value`` (parsed JSON)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and SENSITIVE_KEY.search(key) and isinstance(item, str):
                yield item
            else:
                yield from _sensitive_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sensitive_values(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        if "://" in value and urlsplit(value).password:  # a URL: its password alone too
            yield str(urlsplit(value).password)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def scrub(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` without sensitive keys' values, raw password pairs, or secret values."""
    if isinstance(value, dict):
        return {
            key: FILTERED
            if isinstance(key, str) and SENSITIVE_KEY.search(key) and item
            else scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        # Sentry keeps headers as [name, value] pairs in places: a sensitive name hides both.
        if len(value) == 2 and isinstance(value[0], str) and SENSITIVE_KEY.search(value[0]):
            return [value[0], FILTERED]
        return [scrub(item, secrets) for item in value]
    if isinstance(value, str):
        value = _RAW_PAIR.sub(rf'\1"{FILTERED}"', value)
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
    return value


def tag(event: Event) -> Event:
    """Tag ``event`` with the request id and trace id of the work that raised it."""
    tags = event.setdefault("tags", {})
    request = context.current()
    if request is not None:
        tags.setdefault("request_id", request.request_id)
    trace_id = _trace_id(request)
    if trace_id is not None:
        tags.setdefault("trace_id", trace_id)
    return event


def _trace_id(request: context.RequestContext | None) -> str | None:
    ids = tracing.current_ids()
    if ids is not None:
        return ids[0]
    if request is not None and "trace_id" in request.extra:
        return str(request.extra["trace_id"])
    parsed = parse_traceparent(current_traceparent())
    return parsed[0] if parsed else None
