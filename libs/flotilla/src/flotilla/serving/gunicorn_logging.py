"""Gunicorn's logger, writing its own lines and the access log as JSON on stdout."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from flotilla.observability.logging import JsonFormatter
from flotilla.web.context import RequestContext
from flotilla.web.lifecycle import ENVIRON_KEY


class JsonLogger(Logger):  # type: ignore[misc]
    """Same JSON shape as the app's logs; the access line carries the request id and user."""

    def setup(self, cfg: Any) -> None:
        """Let Gunicorn build its handlers, then make them JSON on stdout."""
        super().setup(cfg)
        formatter = JsonFormatter(service_name(cfg))
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if not getattr(handler, "_gunicorn", False):
                    continue
                handler.setFormatter(formatter)
                if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                    handler.setStream(sys.stdout)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        """One JSON line per request, written after the response was sent."""
        if not self.access_log_enabled:
            return
        fields: dict[str, Any] = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": _status_code(resp.status),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        request_context: RequestContext | None = environ.get(ENVIRON_KEY)
        if request_context is not None:
            fields["request_id"] = request_context.request_id
            if request_context.user_id is not None:
                fields["user_id"] = request_context.user_id
            fields.update(request_context.extra)  # a traced request's trace_id and span_id
        self.access_log.info("request finished", extra=fields)


def _status_code(status: Any) -> int | None:
    try:
        return int(str(status).split(None, 1)[0])
    except ValueError:
        return None


def service_name(cfg: Any) -> str:
    """``SERVICE_NAME`` if set, else the package of the app: ``users`` for ``users.wsgi:app``."""
    explicit = cfg.settings["proc_name"].get()
    if explicit:
        return str(explicit)
    uri = str(cfg.default_proc_name or "service")
    return uri.split(":", 1)[0].split(".", 1)[0]
