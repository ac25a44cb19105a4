"""What genai-meter needs to know about an OpenAI SDK request before it is sent.

Per client (not per call): the provider behind its base URL, the server address, and whether to
inject `stream_options.include_usage` for it. That is cached by client object, so a call pays a dict
lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..._runtime import Runtime
from .._values import ClientCache, configured_provider

# Hosts of OpenAI-compatible providers, named as the GenAI semantic conventions name them.
_KNOWN_HOSTS = {
    "api.openai.com": "openai",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.x.ai": "x_ai",
    "api.fireworks.ai": "fireworks",
    "generativelanguage.googleapis.com": "gcp.gemini",
}
_KNOWN_PORTS = {11434: "ollama"}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    provider: str
    server: str
    inject_stream_usage: bool


_clients: ClientCache[ClientInfo] = ClientCache()


DEFAULT_PORTS = {"https": 443, "http": 80}  # (a URL leaves its scheme's port out)


def provider_for_host(host: str, port: int | None, is_azure: bool, configured: Mapping[str, str]) -> str:
    """The provider an OpenAI-compatible server is, by its host: `provider_hosts` first (`host:port`,
    then `host`), then Azure, the known hosts and the known ports; `openai` otherwise."""
    named = configured_provider(host, port, configured) if configured else None
    if named is not None:
        return named
    if is_azure or host.endswith(".openai.azure.com") or host.endswith(".cognitiveservices.azure.com"):
        return "azure.ai.openai"
    known = _KNOWN_HOSTS.get(host)
    if known is not None:
        return known
    if port is not None and port in _KNOWN_PORTS:
        return _KNOWN_PORTS[port]
    return "openai"


def _inject_for(host: str, port: int | None, base_url: str, runtime: Runtime) -> bool:
    switches = runtime.config.inject_stream_usage
    for key in (base_url, base_url + "/", f"{host}:{port}", host):  # (a base URL written with its slash)
        if key in switches:
            return switches[key]
    return runtime.config.inject_stream_usage_default


def client_info(resource: Any, runtime: Runtime) -> ClientInfo:
    """Provider, server and injection switch for the client behind an SDK resource."""
    client = getattr(resource, "_client", None)
    if client is None:
        return ClientInfo("openai", "", False)
    cached = _clients.get(client, runtime)
    if cached is not None:
        return cached
    url = getattr(client, "base_url", None)
    host = str(getattr(url, "host", "") or "")
    # `host:443` names the default port too (the URL leaves it out)
    port = getattr(url, "port", None) or DEFAULT_PORTS.get(str(getattr(url, "scheme", "")))
    is_azure = type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI")
    info = ClientInfo(
        provider=provider_for_host(host, port, is_azure, runtime.config.provider_hosts),
        server=host,
        inject_stream_usage=_inject_for(host, port, str(url or "").rstrip("/"), runtime),
    )
    return _clients.put(client, runtime, info)
