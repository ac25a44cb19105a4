"""What genai-meter needs to know about a Google Gen AI SDK request before it is sent.

The backend is a property of the client (`vertexai=True` bills through Vertex AI, otherwise the
Gemini Developer API), so it is read from the `Models` resource's API client; `provider_hosts` in the
configuration overrides it by host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..._runtime import Runtime
from .._values import ClientCache, configured_provider


@dataclass(frozen=True, slots=True)
class ClientInfo:
    provider: str
    server: str


_clients: ClientCache[ClientInfo] = ClientCache()


def client_info(resource: Any, runtime: Runtime) -> ClientInfo:
    api_client = getattr(resource, "_api_client", None)
    cached = _clients.get(api_client, runtime) if api_client is not None else None
    if cached is not None:
        return cached
    provider = "gcp.vertex_ai" if getattr(api_client, "vertexai", False) else "gcp.gemini"
    base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
    host, port = "", None
    if isinstance(base_url, str) and base_url:
        try:
            parts = urlsplit(base_url)
            host, port = parts.hostname or "", parts.port
        except ValueError:
            pass
    named = configured_provider(host, port, runtime.config.provider_hosts)
    info = ClientInfo(provider if named is None else named, host)
    return _clients.put(api_client, runtime, info) if api_client is not None else info


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
