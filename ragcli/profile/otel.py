"""`profile --otel`: the profile's spans as OpenTelemetry traces (one trace per run).

Uses the `opentelemetry` packages when they are installed (chromadb brings them), never
requires them. Spans go to the OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set, else
to stderr as JSON (the SDK's console exporter), unless the program already configured a
tracer provider.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import UsageError

if TYPE_CHECKING:
    from ragcli.profile.report import ProfileReport
    from ragcli.profile.runs import RunRecord


def _provider() -> Any:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        raise UsageError(
            "--otel needs the opentelemetry-sdk package: pip install opentelemetry-sdk"
        ) from None
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        return provider
    provider = TracerProvider()
    exporter: Any = None
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        except ImportError:
            exporter = None
    provider.add_span_processor(
        SimpleSpanProcessor(exporter or ConsoleSpanExporter(out=sys.stderr))
    )
    return provider


def export(report: ProfileReport) -> int:
    """Emit every run as a trace; returns how many spans were sent."""
    from opentelemetry import trace

    provider = _provider()
    tracer = provider.get_tracer("ragcli")
    to_epoch = time.time_ns() - time.perf_counter_ns()
    runs: list[tuple[str, RunRecord, list[Any]]] = [
        ("cold", report.cold, report.load_spans + report.cold.spans)
    ] + [("warm", r, r.spans) for r in report.warm]
    sent = 0
    for phase, record, spans in runs:
        start = min([s.start_ns for s in spans] + [record.started_ns])
        root = tracer.start_span(
            "ragcli.ask",
            start_time=start + to_epoch,
            attributes={
                "ragcli.phase": phase,
                "ragcli.question": record.question,
                "ragcli.ttft_ms": record.ttft_ms,
                "ragcli.cached": record.cached,
            },
        )
        context = trace.set_span_in_context(root)
        for s in spans:
            attrs = {f"ragcli.{k}": str(v) for k, v in s.attrs.items()}
            child = tracer.start_span(
                s.name, context=context, start_time=s.start_ns + to_epoch, attributes=attrs
            )
            child.end(end_time=s.end_ns + to_epoch)
            sent += 1
        root.end(end_time=record.ended_ns + to_epoch)
        sent += 1
    provider.force_flush()
    return sent
