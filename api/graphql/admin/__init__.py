"""The admin domain: who is calling, and the API keys (admin only)."""

__all__: list[str] = []
