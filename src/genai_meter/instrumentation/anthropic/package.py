"""The `anthropic` versions this instrumentor supports: the current 2.x major and the previous one."""

_instruments = ("anthropic >= 0.40",)
