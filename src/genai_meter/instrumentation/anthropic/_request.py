"""What genai-meter needs to know about an Anthropic SDK request before it is sent.

The provider is the platform that bills the call, and that is told by the client's class: the SDK's
Bedrock clients bill through AWS, its Vertex clients through Google Cloud; every other client
(first-party, Foundry, the Anthropic-managed AWS and Google Cloud gateways) calls Anthropic's own API
at Anthropic's prices. `provider_hosts` in the configuration overrides it by host. Cached by client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._runtime import Runtime
from .._values import ClientCache, configured_provider, text

# Base classes of the SDK's platform clients (matched by name: importing the modules would pull in
# optional dependencies such as boto3 or google-auth).
_PLATFORM_BASES = {
    "BaseBedrockClient": "aws.bedrock",
    "BaseMantleClient": "aws.bedrock",
    "BaseVertexClient": "gcp.vertex_ai",
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    provider: str
    server: str


_clients: ClientCache[ClientInfo] = ClientCache()


def provider_for_client(client: Any) -> str:
    """The OTel provider name of an Anthropic SDK client, from its class."""
    for cls in type(client).__mro__:
        provider = _PLATFORM_BASES.get(cls.__name__)
        if provider is not None:
            return provider
    return "anthropic"


def client_info(resource: Any, runtime: Runtime) -> ClientInfo:
    """Provider and server of the client behind an SDK resource (`client.messages`)."""
    client = getattr(resource, "_client", None)
    if client is None:
        return ClientInfo("anthropic", "")
    cached = _clients.get(client, runtime)
    if cached is not None:
        return cached
    url = getattr(client, "base_url", None)
    host = str(getattr(url, "host", "") or "")
    port = getattr(url, "port", None)
    provider = configured_provider(host, port, runtime.config.provider_hosts)
    if provider is None:
        provider = provider_for_client(client)
    info = _clients.put(client, runtime, ClientInfo(provider, host))
    return info




def metadata_user(metadata: Any) -> str | None:
    """`metadata.user_id`: the app's own id for the end user, the fallback attribution."""
    if isinstance(metadata, dict):
        return text(metadata.get("user_id"))
    return text(getattr(metadata, "user_id", None))
