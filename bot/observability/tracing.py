"""OpenTelemetry traces, only when OTEL_EXPORTER_OTLP_ENDPOINT is set and the `[otel]` extra
(opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http) is installed: one span per Slack
request, a child span for each integration call. The tracer provider belongs to the app, not
to the process, so several servers (the tests) never share one."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from bot.config import Settings

log = logging.getLogger(__name__)


class Tracing:
    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("pavedroad")

    @classmethod
    def from_settings(cls, settings: Settings, exporter: Any = None) -> "Tracing | None":
        """None when tracing is off (no endpoint) or cannot be on (packages missing, said once)."""
        if not settings.otel_exporter_otlp_endpoint and exporter is None:
            return None
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError:
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-sdk is not installed; tracing is off "
                        "(pip install 'pavedroad[otel]')")
            return None
        if exporter is None:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is not "
                            "installed; tracing is off (pip install 'pavedroad[otel]')")
                return None
            exporter = OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces")
            processor: Any = BatchSpanProcessor(exporter)
        else:
            processor = SimpleSpanProcessor(exporter)
        provider = TracerProvider(resource=Resource.create({"service.name": "pavedroad"}))
        provider.add_span_processor(processor)
        log.info("tracing to %s", settings.otel_exporter_otlp_endpoint or exporter.__class__.__name__)
        return cls(provider)

    @contextlib.contextmanager
    def span(self, span_name: str, /, **attributes: str) -> Iterator[Any]:
        with self.tracer.start_as_current_span(span_name, attributes={k: v for k, v in attributes.items() if v}) as span:
            yield span

    def name_current(self, span_name: str, /, **attributes: str) -> None:
        """Name the current span (the request's, started by the server before Bolt parsed the body)."""
        from opentelemetry import trace

        span = trace.get_current_span()
        if span.is_recording():
            span.update_name(span_name)
            span.set_attributes({k: v for k, v in attributes.items() if v})

    def shutdown(self) -> None:
        self.provider.shutdown()
