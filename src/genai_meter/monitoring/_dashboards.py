"""The four Grafana dashboards (Overview, Per user, Budgets, Models), built with grafanalib.

Every query comes from `_promql`, hence from `genai_meter.names`. Counters are only ever read
through `_promql.sum_amount` (amounts over the time range or a fixed window: increase() plus the
whole value of a series born inside the window, which increase() misses) or rate() (the paces of
time-series panels), so process restarts never show up as negative or doubled spend. The data
source is a dashboard variable, so the same JSON works against any Prometheus-compatible data
source Grafana knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafanalib import core as g

from genai_meter import names
from genai_meter.monitoring import _promql as q

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["genai-meter"]
RANGE = "$__range"
RATE = "$__rate_interval"
USD = "currencyUSD"
PERCENT = "percentunit"
BUDGET_STEPS = [
    g.Threshold("green", 0, 0.0),
    g.Threshold("blue", 1, 0.75),
    g.Threshold("orange", 2, 0.9),
    g.Threshold("red", 3, 1.0),
]


def _target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> g.Target:
    return g.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        instant=instant,
        format="table" if instant else "time_series",
        datasource=DATASOURCE,
        intervalFactor=1,
    )


@dataclass
class _Grid:
    """Lays panels out left to right on Grafana's 24-column grid, wrapping to a new row."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    panels: list[Any] = field(default_factory=list)

    def add(self, panel: Any, w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel.gridPos = g.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self.add(g.RowPanel(title=title), 24, 1)
        self.x, self.y, self.row_height = 0, self.y + 1, 0


def _stat(
    title: str, expr: str, unit: str, decimals: int, description: str, time_from: str | None = None
) -> g.Stat:
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[_target(expr, instant=True)],
        format=unit,
        decimals=decimals,
        reduceCalc="lastNotNull",
        graphMode="none",
        colorMode="value",
        thresholds=[g.Threshold("blue", 0, 0.0)],
        timeFrom=time_from,
        noValue="0",
    )


def _timeseries(
    title: str,
    targets: list[g.Target],
    unit: str,
    decimals: int | None,
    description: str,
    stack: bool = False,
) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        valueDecimals=decimals,
        stacking={"mode": "normal", "group": "A"} if stack else {"mode": "none", "group": "A"},
        fillOpacity=20 if stack else 0,
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["mean", "lastNotNull"],
        tooltipMode="multi",
    )


def _table(title: str, targets: list[g.Target], unit: str, decimals: int, description: str) -> g.Table:
    """Instant queries rendered as one row per label set; the time column says nothing here."""
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        extraJson={"fieldConfig": {"defaults": {"decimals": decimals}}},
        sortBy=[g.TableSortByField(displayName="Value", desc=True)] if len(targets) == 1 else [],
    )


def _datasource_var() -> g.Template:
    return g.Template(name="datasource", label="Data source", type="datasource", query="prometheus")


def _label_var(name: str, label: str, metric: str, title: str) -> g.Template:
    return g.Template(
        name=name,
        label=title,
        query=f"label_values({metric}, {label})",
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        refresh=2,
        sort=1,
    )


def _dashboard(
    title: str, uid: str, description: str, grid: _Grid, variables: list[g.Template]
) -> g.Dashboard:
    return g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=TAGS,
        panels=grid.panels,
        templating=g.Templating(list=[_datasource_var(), *variables]),
        time=g.Time("now-24h", "now"),
        refresh="1m",
        timezone="utc",
        schemaVersion=39,
        graphTooltip=1,
    ).auto_panel_ids()


# --- Overview ------------------------------------------------------------------------------------
def overview() -> g.Dashboard:
    calls = {q.PROVIDER: "=~$provider", q.TENANT: "=~$tenant"}
    cost = q.selector(q.COST, **calls)
    hist = {q.HIST_PROVIDER: "=~$provider"}

    def tokens(token_type: str) -> str:
        return q.selector(q.TOKENS, **calls, **{q.TOKEN_TYPE: token_type})

    def requests(**extra: str) -> str:
        return q.selector(q.REQUESTS, **calls, **extra)

    cache_share = (
        f"{q.sum_amount(tokens(names.TOKEN_CACHE_READ), RANGE)}"
        f" / {q.sum_amount(tokens(names.TOKEN_INPUT), RANGE)}"
    )
    error_share = (
        f"{q.sum_amount(requests(**{q.OUTCOME: names.OUTCOME_ERROR}), RANGE)}"
        f" / {q.sum_amount(requests(**{q.OUTCOME: '!=' + names.OUTCOME_BLOCKED}), RANGE)}"
    )

    grid = _Grid()
    grid.add(_stat("Spend today", q.sum_amount(cost, RANGE), USD, 2, "UTC day so far.", "now/d"), 4, 4)
    grid.add(
        _stat("Spend this month", q.sum_amount(cost, RANGE), USD, 2, "UTC month so far.", "now/M"), 4, 4
    )
    grid.add(
        _stat(
            "Burn rate (USD/h)",
            q.sum_amount(cost, "1h"),
            USD,
            2,
            "Spend in the last hour, i.e. per hour at the last hour's pace.",
        ),
        4,
        4,
    )
    grid.add(
        _stat(
            "Spend in range", q.sum_amount(cost, RANGE), USD, 2, "Spend over the dashboard's time range."
        ),
        4,
        4,
    )
    grid.add(
        _stat(
            "Cache-hit share",
            cache_share,
            PERCENT,
            1,
            "Cache-read input tokens as a share of all input tokens.",
        ),
        4,
        4,
    )
    grid.add(_stat("Error share", error_share, PERCENT, 2, "Calls sent that ended in an error."), 4, 4)

    grid.row("Cost")
    for label, title in ((q.PROVIDER, "provider"), (q.MODEL, "model"), (q.FEATURE, "feature")):
        grid.add(
            _timeseries(
                f"Spend by {title} (USD/h)",
                [_target(f"3600 * {q.sum_rate(cost, RATE, (label,))}", f"{{{{{label}}}}}")],
                USD,
                2,
                f"Spend per hour by {title}.",
                stack=True,
            ),
            8,
            8,
        )
    for label, title in ((q.PROVIDER, "provider"), (q.MODEL, "model"), (q.FEATURE, "feature")):
        grid.add(
            _table(
                f"Spend in range by {title}",
                [_target(q.sum_amount(cost, RANGE, (label,)), instant=True)],
                USD,
                2,
                f"Spend over the dashboard's time range by {title}.",
            ),
            8,
            6,
        )

    grid.row("Tokens and calls")
    grid.add(
        _timeseries(
            "Tokens by type (per second)",
            [
                _target(
                    q.sum_rate(q.selector(q.TOKENS, **calls), RATE, (q.TOKEN_TYPE,)),
                    f"{{{{{q.TOKEN_TYPE}}}}}",
                )
            ],
            "short",
            1,
            "Input includes cached input; output includes reasoning.",
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Cache-hit share",
            [
                _target(
                    f"{q.sum_rate(tokens(names.TOKEN_CACHE_READ), RATE)}"
                    f" / {q.sum_rate(tokens(names.TOKEN_INPUT), RATE)}",
                    "cache read / input",
                )
            ],
            PERCENT,
            1,
            "Cache-read input tokens as a share of all input tokens.",
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Calls by outcome (per second)",
            [_target(q.sum_rate(requests(), RATE, (q.OUTCOME,)), f"{{{{{q.OUTCOME}}}}}")],
            "reqps",
            2,
            "ok, error, blocked (by a budget) and unpriced (model missing from the pricing map).",
            stack=True,
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Latency p50 / p95",
            [
                _target(q.quantile(0.5, q.DURATION, RATE, **hist), "p50", "A"),
                _target(q.quantile(0.95, q.DURATION, RATE, **hist), "p95", "B"),
            ],
            "s",
            2,
            "Operation duration of LLM calls (semconv histogram).",
        ),
        12,
        8,
    )
    grid.add(
        _timeseries(
            "Errors, blocked and unpriced calls",
            [
                _target(
                    q.sum_amount(
                        requests(
                            **{
                                q.OUTCOME: "=~"
                                + "|".join(
                                    (names.OUTCOME_ERROR, names.OUTCOME_BLOCKED, names.OUTCOME_UNPRICED)
                                )
                            }
                        ),
                        RATE,
                        (q.OUTCOME,),
                    ),
                    f"{{{{{q.OUTCOME}}}}}",
                )
            ],
            "short",
            0,
            "Calls per interval that failed, were stopped by a budget, or could not be priced.",
        ),
        12,
        8,
    )
    return _dashboard(
        "genai-meter / Overview",
        "genai-meter-overview",
        "LLM spend, tokens, calls and latency across providers, models and features.",
        grid,
        [
            _label_var("provider", q.PROVIDER, q.REQUESTS, "Provider"),
            _label_var("tenant", q.TENANT, q.REQUESTS, "Tenant"),
        ],
    )


# --- Per user --------------------------------------------------------------------------------------
def per_user() -> g.Dashboard:
    who = {q.TENANT: "=~$tenant", q.USER: "=~$user"}
    cost = q.selector(q.COST, **who)
    grid = _Grid()
    grid.add(
        _stat("Spend in range", q.sum_amount(cost, RANGE), USD, 2, "Selected users, dashboard time range."),
        6,
        4,
    )
    grid.add(
        _stat("Spend today", q.sum_amount(cost, RANGE), USD, 2, "Selected users, UTC day so far.", "now/d"),
        6,
        4,
    )
    grid.add(
        _stat(
            "Spend this month",
            q.sum_amount(cost, RANGE),
            USD,
            2,
            "Selected users, UTC month so far.",
            "now/M",
        ),
        6,
        4,
    )
    grid.add(
        _stat(
            "Calls in range",
            q.sum_amount(q.selector(q.REQUESTS, **who), RANGE),
            "short",
            0,
            "All outcomes, blocked calls included.",
        ),
        6,
        4,
    )
    grid.add(
        _timeseries(
            "Spend over time by user (USD/h)",
            [
                _target(
                    f"3600 * {q.sum_rate(cost, RATE, (q.TENANT, q.USER))}",
                    f"{{{{{q.TENANT}}}}} / {{{{{q.USER}}}}}",
                )
            ],
            USD,
            2,
            "Spend per hour of each selected user.",
            stack=True,
        ),
        16,
        8,
    )
    grid.add(
        _table(
            "Spend in range by user",
            [_target(q.sum_amount(cost, RANGE, (q.TENANT, q.USER)), instant=True)],
            USD,
            4,
            "Spend of each selected user over the dashboard's time range.",
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Budget use",
            [
                # One target: with both variables on All, two targets would show every budget twice.
                _target(
                    q.budget_usage_ratio(**{q.SCOPE_VALUE: "=~$user|$tenant"}),
                    f"{{{{{q.BUDGET}}}}} / {{{{{q.SCOPE_VALUE}}}}}",
                    "A",
                ),
            ],
            PERCENT,
            1,
            "Spend / limit of the budgets scoped to the selected users or tenants, current period.",
        ),
        24,
        8,
    )
    for label, title in ((q.MODEL, "models"), (q.FEATURE, "features")):
        grid.add(
            _table(
                f"Top {title}",
                [_target(f"topk(10, {q.sum_amount(cost, RANGE, (label,))})", instant=True)],
                USD,
                4,
                f"The ten {title} the selected users spent most on in the time range.",
            ),
            8,
            8,
        )
    grid.add(
        _table(
            "Tokens by type",
            [_target(q.sum_amount(q.selector(q.TOKENS, **who), RANGE, (q.TOKEN_TYPE,)), instant=True)],
            "short",
            0,
            "Tokens of the selected users in the time range.",
        ),
        8,
        8,
    )
    return _dashboard(
        "genai-meter / Per user",
        "genai-meter-per-user",
        "Spend, budget use, models and features of one tenant's users.",
        grid,
        [
            _label_var("tenant", q.TENANT, q.REQUESTS, "Tenant"),
            _label_var("user", q.USER, q.selector(q.REQUESTS, **{q.TENANT: "=~$tenant"}), "User"),
        ],
    )


# --- Budgets ---------------------------------------------------------------------------------------
def budgets() -> g.Dashboard:
    sel = {q.BUDGET: "=~$budget", q.SCOPE_VALUE: "=~$scope_value"}
    legend = f"{{{{{q.BUDGET}}}}} / {{{{{q.SCOPE_VALUE}}}}}"
    remaining = (
        f"clamp_min({q.budget_gauge(q.BUDGET_LIMIT, **sel)} - {q.budget_gauge(q.BUDGET_SPEND, **sel)}, 0)"
    )
    burn = f"(max{q.by(q.BUDGET_KEY)} (deriv({q.selector(q.BUDGET_SPEND, **sel)}[1h])) > 0)"
    grid = _Grid()
    grid.add(
        _table(
            "Use per budget and scope value",
            [_target(q.budget_usage_ratio(**sel), instant=True)],
            PERCENT,
            1,
            "Spend / limit in the current period.",
        ),
        8,
        8,
    )
    grid.add(
        _table(
            "Spend and limit (USD)",
            [
                _target(q.budget_gauge(q.BUDGET_SPEND, **sel), ref="A", instant=True),
                _target(q.budget_gauge(q.BUDGET_LIMIT, **sel), ref="B", instant=True),
            ],
            USD,
            2,
            "Value #A is the spend, Value #B the limit of the current period.",
        ),
        8,
        8,
    )
    grid.add(
        _table(
            "Time to exhaustion at the current rate",
            [_target(f"{remaining} / {burn}", instant=True)],
            "s",
            0,
            "Remaining budget divided by the spend rate of the last hour;"
            " 0 means exhausted, no row means not spending.",
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Use over time", [_target(q.budget_usage_ratio(**sel), legend)], PERCENT, 1, "Spend / limit."
        ),
        24,
        8,
    )
    grid.add(
        _table(
            "Threshold crossings in range",
            [
                _target(
                    q.sum_amount(
                        q.selector(q.BUDGET_CROSSINGS, **sel), RANGE, (*q.BUDGET_KEY, q.THRESHOLD)
                    ),
                    instant=True,
                )
            ],
            "short",
            0,
            "Each threshold fires once per budget, scope value and period.",
        ),
        12,
        8,
    )
    grid.add(
        _timeseries(
            "Blocked calls",
            [_target(q.sum_amount(q.selector(q.BUDGET_BLOCKED, **sel), RATE, q.BUDGET_KEY), legend)],
            "short",
            0,
            "Calls stopped before they were sent (BudgetExceeded raised into the app).",
        ),
        12,
        8,
    )
    return _dashboard(
        "genai-meter / Budgets",
        "genai-meter-budgets",
        "Budget use, time to exhaustion, threshold crossings and blocked calls.",
        grid,
        [
            _label_var("budget", q.BUDGET, q.BUDGET_LIMIT, "Budget"),
            _label_var(
                "scope_value",
                q.SCOPE_VALUE,
                q.selector(q.BUDGET_LIMIT, **{q.BUDGET: "=~$budget"}),
                "Scope value",
            ),
        ],
    )


# --- Models ----------------------------------------------------------------------------------------
def models() -> g.Dashboard:
    sel = {q.PROVIDER: "=~$provider", q.MODEL: "=~$model"}
    hist = {q.HIST_PROVIDER: "=~$provider", q.HIST_MODEL: "=~$model"}
    key = (q.PROVIDER, q.MODEL)
    sent = q.sum_amount(
        q.selector(q.REQUESTS, **sel, **{q.OUTCOME: f"!={names.OUTCOME_BLOCKED}"}), RANGE, key
    )
    sent_rate = q.sum_rate(
        q.selector(q.REQUESTS, **sel, **{q.OUTCOME: f"!={names.OUTCOME_BLOCKED}"}), RATE, key
    )
    cost_per_request = f"{q.sum_amount(q.selector(q.COST, **sel), RANGE, key)} / {sent}"
    legend = f"{{{{{q.PROVIDER}}}}} / {{{{{q.MODEL}}}}}"
    grid = _Grid()
    grid.add(
        _table(
            "Cost per request",
            [_target(cost_per_request, instant=True)],
            USD,
            6,
            "Spend / calls sent, time range.",
        ),
        8,
        8,
    )
    grid.add(
        _table(
            "Cost per 1000 requests",
            [_target(f"1000 * ({cost_per_request})", instant=True)],
            USD,
            2,
            "Spend per thousand calls sent, time range.",
        ),
        8,
        8,
    )
    grid.add(
        _table(
            "Tokens per request",
            [
                _target(
                    f"{q.sum_amount(q.selector(q.TOKENS, **sel), RANGE, (*key, q.TOKEN_TYPE))}"
                    f" / on ({', '.join(key)}) group_left {sent}",
                    instant=True,
                )
            ],
            "short",
            1,
            "Tokens by type / calls sent, time range.",
        ),
        8,
        8,
    )
    grid.add(
        _timeseries(
            "Cost per request over time",
            [_target(f"{q.sum_rate(q.selector(q.COST, **sel), RATE, key)} / {sent_rate}", legend)],
            USD,
            6,
            "Spend / calls sent.",
        ),
        12,
        8,
    )
    grid.add(
        _timeseries(
            "Calls per second by model",
            [_target(q.sum_rate(q.selector(q.REQUESTS, **sel), RATE, key), legend)],
            "reqps",
            2,
            "All outcomes.",
            stack=True,
        ),
        12,
        8,
    )
    for ref, quant in (("A", 0.5), ("B", 0.95)):
        grid.add(
            _timeseries(
                f"Latency p{int(quant * 100)} by model",
                [
                    _target(
                        q.quantile(quant, q.DURATION, RATE, (q.HIST_MODEL,), **hist),
                        f"{{{{{q.HIST_MODEL}}}}}",
                        ref,
                    )
                ],
                "s",
                2,
                "Operation duration (semconv histogram).",
            ),
            12,
            8,
        )
    grid.add(
        _timeseries(
            "Tokens per call p95 by model and type",
            [
                _target(
                    q.quantile(0.95, q.TOKEN_USAGE, RATE, (q.HIST_MODEL, q.HIST_TOKEN_TYPE), **hist),
                    f"{{{{{q.HIST_MODEL}}}}} {{{{{q.HIST_TOKEN_TYPE}}}}}",
                )
            ],
            "short",
            0,
            "Token usage per call (semconv histogram, bucket resolution).",
        ),
        24,
        8,
    )
    return _dashboard(
        "genai-meter / Models",
        "genai-meter-models",
        "Cost and tokens per request and latency, by model.",
        grid,
        [
            _label_var("provider", q.PROVIDER, q.REQUESTS, "Provider"),
            _label_var("model", q.MODEL, q.selector(q.REQUESTS, **{q.PROVIDER: "=~$provider"}), "Model"),
        ],
    )


DASHBOARDS = {
    "overview": overview,
    "per-user": per_user,
    "budgets": budgets,
    "models": models,
}
