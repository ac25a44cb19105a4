"""Model-id normalisation: the ids a price book should try, most specific first.

Providers and gateways spell one model many ways: `gpt-4o-2024-08-06`, `openai/gpt-4o`,
`us.anthropic.claude-3-5-sonnet-20241022-v2:0` (Bedrock), `claude-3-5-sonnet-v2@20241022` (Vertex),
`projects/.../models/gemini-1.5-pro-002`, `ft:gpt-4o-mini-2024-07-18:org::id`. Rather than listing
every spelling in the data, the book tries the exact id and then progressively more general forms,
so a dated snapshot without its own entry falls back to its base model while a snapshot priced
differently (an entry of its own) still wins. Fine-tunes never fall back to the base model: their
prices differ, so they resolve to fine-tune prices or stay unpriced.
"""

from __future__ import annotations

import re

_BEDROCK_REGION = re.compile(r"^(?:us|us-gov|eu|apac|ap|au|ca|jp|in|sa|global|regional)\.")
_BEDROCK_VENDOR = re.compile(
    r"^(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|google|nvidia|"
    r"moonshotai|zai|minimax|twelvelabs|stability|luma)\."
)
_MONTHS = "(?:0[1-9]|1[0-2])"
_DAYS = "(?:0[1-9]|[12][0-9]|3[01])"
_SUFFIXES = (
    re.compile(r"-latest$"),
    re.compile(r":latest$"),  # Ollama tags
    re.compile(r"-v\d+(?::\d+)?$"),  # Bedrock model versions: -v1:0, -v2
    re.compile(r":\d+$"),
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI snapshots: -2024-08-06
    re.compile(r"-20\d{6}$"),  # Anthropic snapshots: -20241022
    re.compile(rf"(?<!-\d{{4}})-{_MONTHS}-{_DAYS}$"),  # Gemini previews: -05-20 (not the end of -2024-05-20)
    re.compile(rf"-(?:{_MONTHS}{_DAYS}|2[3-9]{_MONTHS})$"),  # -0613 (MMDD), -2411 (YYMM)
    re.compile(r"-0\d\d$"),  # Gemini versions: -001, -002
)


def _with_stripped_suffixes(model: str, out: list[str]) -> None:
    """`model` and every form reached by stripping suffixes, longest (most specific) first.

    Every matching pattern's result is kept, not only the first's: `claude-v2:1` is both a Bedrock
    version (`-v2:1` -> `claude`) and a `:1` tag (-> `claude-v2`, the id that is priced)."""
    forms = [model]
    i = 0
    while i < len(forms):
        for pattern in _SUFFIXES:
            stripped = pattern.sub("", forms[i], count=1)
            if stripped and stripped not in forms:
                forms.append(stripped)
        i += 1
    forms.sort(key=len, reverse=True)  # stable: among equal lengths, the order found
    out.extend(form for form in forms if form not in out)


def clean(model: str) -> str:
    return model.strip().lower()


def price_ids(provider: str, request_model: str, response_model: str | None) -> tuple[str, str | None]:
    """The ids that price a call, in the order to try (the second None when there is one id): the
    response's model first (a dated snapshot may have prices of its own), then the request's. On
    Bedrock the request's first: its region prefix (`global.` or in-region, billed apart) and an
    inference-profile ARN (`deployments:`) are only in it; the response names the bare model."""
    if not response_model or response_model == request_model:
        return request_model, None
    if provider == "aws.bedrock":
        return request_model, response_model
    return response_model, request_model


def is_global(model: str) -> bool:
    """A Bedrock global cross-region id (`global.anthropic...`, also the tail of an ARN).

    Bedrock bills a call made through a geographic profile (`us.`, `eu.`, `jp.`, ...) or in-region
    (no prefix) above the `global.` price for many models; the book prices the two apart."""
    return clean(model).rpartition("/")[2].startswith("global.")


def vendor_prefix(model: str) -> tuple[str, str] | None:
    """(`vendor`, rest) for `vendor/model` and Bedrock `vendor.model` ids, used to find the upstream."""
    model = clean(model)
    if "/" in model:
        vendor, _, rest = model.partition("/")
        return (vendor, rest) if vendor and rest else None
    without_region = _BEDROCK_REGION.sub("", model, count=1)
    match = _BEDROCK_VENDOR.match(without_region)
    if match:
        return match.group(0)[:-1], without_region[match.end() :]
    return None


def candidates(model: str) -> list[str]:
    """The ids to look up for `model`, most specific first (all lower case)."""
    model = clean(model)
    out: list[str] = []
    if model.startswith("ft:") or ".ft-" in model:
        # ft:<base>:<org>:<suffix>:<id> (OpenAI) or <base>.ft-<id> (Azure): try the exact id, then the
        # fine-tune prices of <base>, never the base model's own prices.
        out.append(model)
        base = model[3:].split(":", 1)[0] if model.startswith("ft:") else model.split(".ft-", 1)[0]
        if base:
            ft_forms: list[str] = []
            _with_stripped_suffixes(base, ft_forms)
            out.extend(f"ft:{form}" for form in ft_forms if f"ft:{form}" not in out)
        return out
    forms = [model]
    rest = model
    while "/" in rest:  # provider prefixes and resource paths: openai/gpt-4o, models/gemini-..., arn:...
        rest = rest.split("/", 1)[1]
        if rest:
            forms.append(rest)
    tail = forms[-1]
    without_region = _BEDROCK_REGION.sub("", tail, count=1)
    if without_region != tail and _BEDROCK_VENDOR.match(without_region):
        forms.append(without_region)
        tail = without_region
    without_vendor = _BEDROCK_VENDOR.sub("", tail, count=1)
    if without_vendor != tail and without_vendor:
        forms.append(without_vendor)
    for form in forms:
        if "@" in form:  # Vertex: claude-3-5-sonnet-v2@20241022
            _with_stripped_suffixes(form, out)
            form = form.replace("@", "-")
        _with_stripped_suffixes(form, out)
    return out
