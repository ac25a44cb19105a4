"""The `openai` versions this instrumentor supports: the current 3.x major and the previous ones."""

_instruments = ("openai >= 1.40",)
