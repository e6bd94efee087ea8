"""The fragility domain: the fragility model's scores of the served store, their
explanations, and rescoring (:mod:`api.fragility` holds the model)."""

__all__: list[str] = []
