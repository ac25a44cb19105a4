"""What genai-meter needs to know about a Google Gen AI SDK request before it is sent.

The backend is a property of the client (`vertexai=True` bills through Vertex AI, otherwise the
Gemini Developer API), so it is read from the `Models` resource's API client; `provider_hosts` in the
configuration overrides it by host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..._runtime import Runtime


@dataclass(frozen=True, slots=True)
class ClientInfo:
    provider: str
    server: str


# (default provider, base URL) -> (the `provider_hosts` it was resolved with, what it resolved to):
# parsing the base URL again costs every call ~20,000 CPU instructions, and a process has few clients.
_resolved: dict[tuple[str, str], tuple[Mapping[str, str], ClientInfo]] = {}
_MAX_RESOLVED = 1_000


def client_info(resource: Any, runtime: Runtime) -> ClientInfo:
    api_client = getattr(resource, "_api_client", None)
    provider = "gcp.vertex_ai" if getattr(api_client, "vertexai", False) else "gcp.gemini"
    base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
    url = base_url if isinstance(base_url, str) else ""
    configured = runtime.config.provider_hosts
    known = _resolved.get((provider, url))
    if known is not None and known[0] is configured:
        return known[1]
    info = _resolve(provider, url, configured)
    if len(_resolved) < _MAX_RESOLVED:
        _resolved[provider, url] = (configured, info)
    return info


def _resolve(provider: str, base_url: str, configured: Mapping[str, str]) -> ClientInfo:
    host, port = "", None
    if base_url:
        try:
            parts = urlsplit(base_url)
            host, port = parts.hostname or "", parts.port
        except ValueError:
            pass
    for key in (f"{host}:{port}", host):
        if key in configured:
            provider = configured[key]
            break
    return ClientInfo(provider, host)


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def model_name(value: Any) -> str:
    """The model id as priced: `models/gemini-2.5-flash` and `publishers/google/models/...` -> the id."""
    if not isinstance(value, str) or not value:
        return "unknown"
    return value.rsplit("/models/", 1)[-1].removeprefix("models/")


def max_output_tokens(config: Any) -> int | None:
    value = _field(config, "max_output_tokens") if config is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
