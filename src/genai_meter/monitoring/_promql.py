"""PromQL building blocks, every metric and label name taken from `genai_meter.names`.

Dashboards and alert rules are built from these helpers only, so a rename in `names` moves every
query with it and a query can never reference a series the code does not emit.
"""

from __future__ import annotations

from collections.abc import Iterable

from genai_meter import names

# Series names as Prometheus shows them.
COST = names.COST.prometheus_name
TOKENS = names.TOKENS.prometheus_name
REQUESTS = names.REQUESTS.prometheus_name
UNPRICED = names.UNPRICED_CALLS.prometheus_name
BUDGET_LIMIT = names.BUDGET_LIMIT.prometheus_name
BUDGET_SPEND = names.BUDGET_SPEND.prometheus_name
BUDGET_CROSSINGS = names.BUDGET_THRESHOLD_CROSSINGS.prometheus_name
BUDGET_BLOCKED = names.BUDGET_BLOCKED.prometheus_name
DURATION = names.OPERATION_DURATION.prometheus_name
TOKEN_USAGE = names.TOKEN_USAGE.prometheus_name

# Label names.
PROVIDER = names.LABEL_PROVIDER
MODEL = names.LABEL_MODEL
OPERATION = names.LABEL_OPERATION
FEATURE = names.LABEL_FEATURE
TENANT = names.LABEL_TENANT
USER = names.LABEL_USER
TOKEN_TYPE = names.LABEL_TOKEN_TYPE
OUTCOME = names.LABEL_OUTCOME
BUDGET = names.LABEL_BUDGET
SCOPE_VALUE = names.LABEL_SCOPE_VALUE
THRESHOLD = names.LABEL_THRESHOLD
# The semconv histograms carry the semconv attribute keys as labels.
HIST_MODEL = names.prometheus_label(names.REQUEST_MODEL)
HIST_PROVIDER = names.prometheus_label(names.PROVIDER_NAME)
HIST_OPERATION = names.prometheus_label(names.OPERATION_NAME)
HIST_TOKEN_TYPE = names.prometheus_label(names.TOKEN_TYPE)

BUDGET_KEY = (BUDGET, SCOPE_VALUE)


def selector(metric: str, **matchers: str) -> str:
    """`metric{label="value", label=~"regex"}`: a value starting with `=~`, `!=` or `!~` sets the operator."""
    if not matchers:
        return metric
    parts = []
    for label, value in matchers.items():
        op = "="
        for candidate in ("=~", "!=", "!~"):
            if value.startswith(candidate):
                op, value = candidate, value[len(candidate) :]
                break
        parts.append(f'{label}{op}"{value}"')
    return f"{metric}{{{', '.join(parts)}}}"


def by(labels: Iterable[str]) -> str:
    """`by (a, b)` or nothing when there are no labels (a total)."""
    labels = tuple(labels)
    return f" by ({', '.join(labels)})" if labels else ""


def sum_increase(series: str, window: str, labels: Iterable[str] = ()) -> str:
    """Counters are read with increase(), never summed raw: raw totals reset with every restart.

    increase() needs two samples of a series, so it misses what a series' first sample already
    holds; dashboards read amounts with `sum_amount`, which adds that back.
    """
    return f"sum{by(labels)} (increase({series}[{window}]))"


def sum_amount(series: str, window: str, labels: Iterable[str] = ()) -> str:
    """What a counter counted within `window`, a label set's first events included.

    A counter series appears with its first event already counted (a user's first call: cost 0.35),
    and increase() needs two samples, so whatever the first scrape saw is lost: a one-call user shows
    $0. Per series, before summing:

    - a series born inside the window (no sample in the lookback before the window's start:
      `unless X offset window`) started from 0 there, so its whole last value in the window is the
      amount, exact; last_over_time() also keeps a series that went away before the window's end
      (a short-lived process);
    - a series born inside the window that was reset there too (its process restarted under the same
      labels) falls back to increase(), which handles resets and loses only the first sample: its last
      value would lose everything before the restart;
    - any other series is read with increase() as usual (extrapolated to the window's edges).

    `or` and `unless` match label sets ignoring the metric name, which last_over_time() keeps and
    increase() drops; the outer sum drops it anyway, so both arms group on the same labels.
    """
    rng = f"{series}[{window}]"
    born = f"last_over_time({rng}) unless {series} offset {window} unless resets({rng}) > 0"
    return f"sum{by(labels)} (({born}) or increase({rng}))"


def sum_rate(series: str, window: str, labels: Iterable[str] = ()) -> str:
    return f"sum{by(labels)} (rate({series}[{window}]))"


def budget_gauge(metric: str, **matchers: str) -> str:
    """One value per (budget, scope value): every process sharing a budget store reports the same figure."""
    return f"max{by(BUDGET_KEY)} ({selector(metric, **matchers)})"


def budget_usage_ratio(**matchers: str) -> str:
    """Spend / limit per budget and scope value; budgets with a zero limit are left out (no division by 0)."""
    return f"{budget_gauge(BUDGET_SPEND, **matchers)} / ({budget_gauge(BUDGET_LIMIT, **matchers)} > 0)"


def quantile(q: float, histogram: str, window: str, labels: Iterable[str] = (), **matchers: str) -> str:
    inner = sum_rate(selector(f"{histogram}_bucket", **matchers), window, ("le", *labels))
    return f"histogram_quantile({q}, {inner})"


def new_or_increased(metric: str, window: str, labels: Iterable[str], **matchers: str) -> str:
    """Events counted in `window`, including a label set's first event.

    A counter series appears with its first event already counted (value 1), and increase() needs two
    samples, so a one-off call to an unpriced model would never show. The `unless ... offset` arm
    catches a label set that exists now but did not exist `window` ago.
    """
    series = selector(metric, **matchers)
    labels = tuple(labels)
    return (
        f"({sum_increase(series, window, labels)} > 0)"
        f" or ((sum{by(labels)} ({series}) > 0) unless sum{by(labels)} ({series} offset {window}))"
    )
