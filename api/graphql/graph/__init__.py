"""The graph domain: protocols, pools, assets, oracles, accounts, positions, dependencies and
contagion paths, read from the graph store."""

__all__: list[str] = []
