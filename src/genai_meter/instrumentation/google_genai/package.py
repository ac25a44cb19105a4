"""The `google-genai` versions this instrumentor supports."""

_instruments = ("google-genai >= 1.0",)
