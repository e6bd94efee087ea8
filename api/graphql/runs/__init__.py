"""The runs domain: launching scenario runs, listing and reading them, comparing two,
cancelling one and following its progress (:mod:`api.runs` executes them)."""

__all__: list[str] = []
