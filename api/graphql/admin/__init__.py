"""The admin domain: who is calling, the API keys and ingesting files into the served store
(admin only)."""

__all__: list[str] = []
