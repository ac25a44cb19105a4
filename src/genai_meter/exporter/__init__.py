"""Cost for spans that other instrumentations made: a span exporter that prices GenAI usage.

Under the launcher::

    OTEL_TRACES_EXPORTER=genai_meter GENAI_METER_EXPORTER_DELEGATE=otlp opentelemetry-instrument python app.py

or in code::

    from genai_meter.exporter import CostSpanExporter
    provider.add_span_processor(BatchSpanProcessor(CostSpanExporter(OTLPSpanExporter())))

See docs/exporter.md.
"""

from __future__ import annotations

from ._exporter import DELEGATE_ENV, CostSpanExporter, load_delegate
from ._read import SpanUsage, span_usage

__all__ = ["DELEGATE_ENV", "CostSpanExporter", "SpanUsage", "load_delegate", "span_usage"]
