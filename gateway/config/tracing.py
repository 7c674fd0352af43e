"""``tracing:``: where the gateway sends its OpenTelemetry spans (OTLP), and how many of them."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.config.reader import Reader

PROTOCOLS = ("http", "grpc")
#: the module each protocol's exporter needs; ``grpc`` is an extra a slim install may lack
EXPORTER_MODULES = {
    "http": "opentelemetry.exporter.otlp.proto.http",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc",
}


@dataclass(frozen=True)
class TracingConfig:
    otlp_endpoint: str | None = None  # None: tracing off (the default)
    protocol: str = "http"  # OTLP over HTTP (protobuf) or gRPC
    sample_ratio: float = 1.0  # share of new traces recorded; a trusted caller's sampling decision is kept
    service_name: str = "localrouter"

    @property
    def enabled(self) -> bool:
        return self.otlp_endpoint is not None


_KEYS = {"otlp_endpoint": False, "protocol": False, "sample_ratio": False, "service_name": False}


def read_tracing(r: Reader, raw: Any) -> TracingConfig:
    m = r.mapping(raw, "tracing", _KEYS) or {}
    endpoint = r.string(m["otlp_endpoint"], "tracing.otlp_endpoint") if m.get("otlp_endpoint") is not None else None
    if endpoint is not None and (urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc):
        r.problem("tracing.otlp_endpoint", "expected an http:// or https:// URL")
    protocol = r.string(m.get("protocol", "http"), "tracing.protocol") or "http"
    if protocol not in PROTOCOLS:
        r.problem("tracing.protocol", "expected http or grpc")
    elif endpoint is not None and importlib.util.find_spec(EXPORTER_MODULES[protocol]) is None:
        r.problem("tracing.protocol", f"{protocol} needs the package {EXPORTER_MODULES[protocol].replace('.', '-')}")
    ratio = r.number(m["sample_ratio"], "tracing.sample_ratio", minimum=0) if "sample_ratio" in m else None
    if ratio is not None and ratio > 1:
        r.problem("tracing.sample_ratio", "expected a number from 0 to 1")
    name = r.string(m["service_name"], "tracing.service_name") if "service_name" in m else None
    return TracingConfig(
        endpoint,
        protocol,
        float(ratio) if ratio is not None else TracingConfig.sample_ratio,
        name or TracingConfig.service_name,
    )
