"""Every span attribute, metric and label name genai-meter emits, and the Prometheus names they become.

The GenAI semantic conventions are still moving; keeping every name here means a rename is one edit,
and the dashboards, alert rules and docs (which import this module) follow it instead of breaking.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- span attributes: GenAI semantic conventions -------------------------------------------------
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
USER_ID = "user.id"

# Older names still emitted by some instrumentations (read by the cost exporter, never written).
LEGACY_SYSTEM = "gen_ai.system"
LEGACY_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
LEGACY_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"

# Draft semconv cost attributes, emitted only when `emit_semconv_cost` is on.
SEMCONV_COST_AMOUNT = "gen_ai.usage.cost.amount"
SEMCONV_COST_CURRENCY = "gen_ai.usage.cost.currency"
SEMCONV_COST_SOURCE = "gen_ai.usage.cost.source"

# --- span attributes: genai-meter's own namespace ------------------------------------------------
TENANT_ID = "genai_meter.tenant"
FEATURE = "genai_meter.feature"
COST_USD = "genai_meter.cost.usd"
COST_INPUT_USD = "genai_meter.cost.input_usd"
COST_CACHE_READ_USD = "genai_meter.cost.cache_read_usd"
COST_CACHE_WRITE_USD = "genai_meter.cost.cache_write_usd"
COST_OUTPUT_USD = "genai_meter.cost.output_usd"
COST_SOURCE = "genai_meter.cost.source"
PRICING_VERSION = "genai_meter.pricing.version"
PRICED_MODEL = "genai_meter.pricing.model"
UNPRICED = "genai_meter.unpriced"
USAGE_ESTIMATED = "genai_meter.usage.estimated"
USAGE_SUSPECT = "genai_meter.usage.suspect"
USAGE_MISSING = "genai_meter.usage.missing"  # the response carried no usage; the tokens are estimated
BATCH_ID = "genai_meter.batch.id"  # a batch's result, metered when the app reads it
BATCH_CUSTOM_ID = "genai_meter.batch.custom_id"  # the app's own id of the request in its batch
BATCH_OUTPUT_FILE_ID = "genai_meter.batch.output_file_id"  # an OpenAI batch's output file, metered as downloaded
OUTCOME = "genai_meter.outcome"
BUDGET_EVENT = "genai_meter.budget.threshold"
BUDGET_BLOCKED_EVENT = "genai_meter.budget.blocked"
BUDGET_NAME_ATTR = "genai_meter.budget.name"
BUDGET_SCOPE_ATTR = "genai_meter.budget.scope_value"
BUDGET_THRESHOLD_ATTR = "genai_meter.budget.threshold_percent"

# --- OTel baggage keys read for attribution ------------------------------------------------------
BAGGAGE_USER = "genai_meter.user"
BAGGAGE_TENANT = "genai_meter.tenant"
BAGGAGE_FEATURE = "genai_meter.feature"
BAGGAGE_USER_FALLBACKS = ("user.id", "enduser.id")

# --- values ---------------------------------------------------------------------------------------
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"
OUTCOME_BLOCKED = "blocked"
OUTCOME_UNPRICED = "unpriced"
OUTCOMES = (OUTCOME_OK, OUTCOME_ERROR, OUTCOME_BLOCKED, OUTCOME_UNPRICED)

TOKEN_INPUT = "input"
TOKEN_OUTPUT = "output"
TOKEN_CACHE_READ = "cache_read"
TOKEN_CACHE_WRITE = "cache_write"
TOKEN_REASONING = "reasoning"
TOKEN_TYPES = (TOKEN_INPUT, TOKEN_OUTPUT, TOKEN_CACHE_READ, TOKEN_CACHE_WRITE, TOKEN_REASONING)

COST_SOURCE_PRICING = "pricing"
COST_SOURCE_PROVIDER = "provider"
COST_SOURCE_ESTIMATED = "estimated"

OVERFLOW_LABEL_VALUE = "__overflow__"


# --- metrics --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """One OTel instrument and the series name it becomes in Prometheus."""

    otel_name: str
    unit: str
    description: str
    prometheus_name: str
    labels: tuple[str, ...]


# Prometheus label names of genai-meter's own metrics.
LABEL_PROVIDER = "provider"
LABEL_MODEL = "model"
LABEL_OPERATION = "operation"
LABEL_FEATURE = "feature"
LABEL_TENANT = "tenant"
LABEL_USER = "user"
LABEL_TOKEN_TYPE = "type"
LABEL_OUTCOME = "outcome"
LABEL_BUDGET = "budget"
LABEL_SCOPE_VALUE = "scope_value"
LABEL_THRESHOLD = "threshold"
LABEL_FAULT = "where"

_ATTRIBUTION_LABELS = (LABEL_PROVIDER, LABEL_MODEL, LABEL_OPERATION, LABEL_FEATURE, LABEL_TENANT, LABEL_USER)

COST = Metric(
    "genai_meter.cost.usd",
    "{USD}",
    "Cost of LLM calls in US dollars, priced from the pricing map or reported by the provider.",
    "genai_meter_cost_usd_total",
    _ATTRIBUTION_LABELS,
)
TOKENS = Metric(
    "genai_meter.tokens",
    "{token}",
    "Tokens used by LLM calls, by token type (input includes cached input; output includes reasoning).",
    "genai_meter_tokens_total",
    (*_ATTRIBUTION_LABELS, LABEL_TOKEN_TYPE),
)
REQUESTS = Metric(
    "genai_meter.requests",
    "{request}",
    "LLM calls by outcome: ok, error, blocked (by a budget) or unpriced (model missing from the pricing map).",
    "genai_meter_requests_total",
    (*_ATTRIBUTION_LABELS, LABEL_OUTCOME),
)
UNPRICED_CALLS = Metric(
    "genai_meter.unpriced",
    "{request}",
    "Calls to models that the pricing map does not know (their cost is missing, never counted as $0).",
    "genai_meter_unpriced_total",
    (LABEL_PROVIDER, LABEL_MODEL),
)
ESTIMATED_CALLS = Metric(
    "genai_meter.usage.estimated",
    "{request}",
    "Calls whose tokens were estimated from text length because the provider reported no usage.",
    "genai_meter_usage_estimated_total",
    (LABEL_PROVIDER, LABEL_MODEL),
)
FAULTS = Metric(
    "genai_meter.faults",
    "{fault}",
    "Faults caught inside genai-meter; the host app's call went on as if uninstrumented.",
    "genai_meter_faults_total",
    (LABEL_FAULT,),
)
BUDGET_LIMIT = Metric(
    "genai_meter.budget.limit.usd",
    "{USD}",
    "Limit of a budget for the current period, per budget and scope value.",
    "genai_meter_budget_limit_usd",
    (LABEL_BUDGET, LABEL_SCOPE_VALUE),
)
BUDGET_SPEND = Metric(
    "genai_meter.budget.spend.usd",
    "{USD}",
    "Spend counted against a budget in its current period, per budget and scope value.",
    "genai_meter_budget_spend_usd",
    (LABEL_BUDGET, LABEL_SCOPE_VALUE),
)
BUDGET_THRESHOLD_CROSSINGS = Metric(
    "genai_meter.budget.threshold.crossings",
    "{event}",
    "Budget thresholds crossed (each fires once per budget, scope value and period).",
    "genai_meter_budget_threshold_crossings_total",
    (LABEL_BUDGET, LABEL_SCOPE_VALUE, LABEL_THRESHOLD),
)
BUDGET_BLOCKED = Metric(
    "genai_meter.budget.blocked",
    "{request}",
    "Calls stopped by a hard budget or the block list before they were sent.",
    "genai_meter_budget_blocked_total",
    (LABEL_BUDGET, LABEL_SCOPE_VALUE),
)
BUDGET_STORE_ERRORS = Metric(
    "genai_meter.budget.store.errors",
    "{error}",
    "Budget spend store unreachable; the guard failed open or closed as configured.",
    "genai_meter_budget_store_errors_total",
    (LABEL_OUTCOME,),
)
LEDGER_ROWS = Metric(
    "genai_meter.ledger.rows",
    "{row}",
    "Ledger rows written to the database.",
    "genai_meter_ledger_rows_total",
    (),
)
LEDGER_SPOOLED = Metric(
    "genai_meter.ledger.spooled",
    "{row}",
    "Ledger rows spooled to the local file while the database was unreachable.",
    "genai_meter_ledger_spooled_total",
    (),
)
LEDGER_DEAD_LETTERED = Metric(
    "genai_meter.ledger.dead_lettered",
    "{row}",
    "Ledger rows the database refused on their own, set aside in the dead-letter file beside the spool.",
    "genai_meter_ledger_dead_lettered_total",
    (),
)

# Semantic-convention histograms (label names are the semconv attribute keys, dots become underscores).
TOKEN_USAGE = Metric(
    "gen_ai.client.token.usage",
    "{token}",
    "Measures number of input and output tokens used",
    "gen_ai_client_token_usage",
    (OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, RESPONSE_MODEL, SERVER_ADDRESS, TOKEN_TYPE),
)
OPERATION_DURATION = Metric(
    "gen_ai.client.operation.duration",
    "s",
    "GenAI operation duration",
    "gen_ai_client_operation_duration_seconds",
    (OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, RESPONSE_MODEL, SERVER_ADDRESS, ERROR_TYPE),
)
TOKEN_USAGE_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
OPERATION_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)

ALL_METRICS = (
    COST,
    TOKENS,
    REQUESTS,
    UNPRICED_CALLS,
    ESTIMATED_CALLS,
    FAULTS,
    BUDGET_LIMIT,
    BUDGET_SPEND,
    BUDGET_THRESHOLD_CROSSINGS,
    BUDGET_BLOCKED,
    BUDGET_STORE_ERRORS,
    LEDGER_ROWS,
    LEDGER_SPOOLED,
    LEDGER_DEAD_LETTERED,
    TOKEN_USAGE,
    OPERATION_DURATION,
)


def prometheus_label(attribute_key: str) -> str:
    """The Prometheus label an OTel attribute key becomes (semconv keys carry dots)."""
    return attribute_key.replace(".", "_")
