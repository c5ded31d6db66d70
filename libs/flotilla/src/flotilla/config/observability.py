"""Settings of what a service reports about itself: OpenTelemetry traces and Sentry.

Both are off unless configured. The ``OTEL_*`` names are the OpenTelemetry SDK's own
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/), so an
operator who knows them needs nothing new; they are declared here as every setting is, so
they are validated at start-up and listed in the README with the others.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings

TracesExporter = Literal["", "otlp", "console", "none"]
TracesSampler = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


class ObservabilitySettings(BaseSettings):
    """Traces (OpenTelemetry, exported over OTLP/HTTP) and error reports (Sentry)."""

    OTEL_SDK_DISABLED: bool = Field(
        False, description="Turn tracing off even when an exporter or endpoint is set."
    )
    OTEL_TRACES_EXPORTER: TracesExporter = Field(
        "",
        description="otlp or console turns tracing on; none or empty (without endpoint): off.",
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(
        "", description="OTLP/HTTP collector base URL (/v1/traces is added); turns tracing on."
    )
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: str = Field(
        "", description="Full OTLP/HTTP URL for traces; overrides the base endpoint."
    )
    OTEL_SERVICE_NAME: str = Field(
        "", description="service.name of the spans; empty: SERVICE_NAME."
    )
    OTEL_TRACES_SAMPLER: TracesSampler = Field(
        "parentbased_always_on",
        description="Which traces are recorded; parentbased_* follow the caller's decision.",
    )
    OTEL_TRACES_SAMPLER_ARG: float = Field(
        1.0, ge=0, le=1, description="Ratio of traces kept by the traceidratio samplers."
    )
    SENTRY_DSN: str = Field(
        "", description="Sentry project DSN; empty: no error reports are sent.", repr=False
    )
    SENTRY_ENVIRONMENT: str = Field(
        "", description="Environment named in Sentry events; empty: ENVIRONMENT."
    )
    SENTRY_RELEASE: str = Field(
        "", description="Release named in Sentry events; empty: <SERVICE_NAME>@<version>."
    )
    SENTRY_SAMPLE_RATE: float = Field(
        1.0, ge=0, le=1, description="Share of errors sent to Sentry."
    )
    SENTRY_TRACES_SAMPLE_RATE: float = Field(
        0.0, ge=0, le=1, description="Share of requests Sentry traces itself (0: errors only)."
    )

    @property
    def tracing_enabled(self) -> bool:
        """Whether this process records and exports spans."""
        if self.OTEL_SDK_DISABLED or self.OTEL_TRACES_EXPORTER == "none":
            return False
        return bool(
            self.OTEL_TRACES_EXPORTER
            or self.OTEL_EXPORTER_OTLP_ENDPOINT
            or self.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        )

    def otlp_traces_endpoint(self) -> str | None:
        """Where spans are sent; ``None``: the exporter's default (localhost:4318)."""
        if self.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
            return self.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
        if self.OTEL_EXPORTER_OTLP_ENDPOINT:
            return self.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
        return None
