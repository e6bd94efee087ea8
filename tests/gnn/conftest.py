"""Shared fixtures of the fragility-model tests: a tiny dataset and a tiny trained model."""

from __future__ import annotations

import pytest

from gnn.dataset import DatasetConfig, Sample, build_dataset
from gnn.labels import ShockFamily
from gnn.model import FragilityModel, NetConfig
from gnn.train import TrainConfig, fit

#: A tiny training setup (seconds on two cores); the family is harsh so labels spread.
TINY = TrainConfig(
    data=DatasetConfig(count=10, seed=11, min_positions=120, max_positions=300, paths=48,
                       family=ShockFamily()),
    eval_data=DatasetConfig(count=3, seed=12, min_positions=120, max_positions=300, paths=48),
    net=NetConfig(hidden=16, layers=3),
    epochs=25, batch_graphs=4, lr=1e-2, pairs=512, seed=3, evaluate=False,
)


@pytest.fixture(scope="session")
def tiny_set() -> list[Sample]:
    return build_dataset(TINY.data)


@pytest.fixture(scope="session")
def tiny_model(tiny_set: list[Sample]) -> FragilityModel:
    return fit(tiny_set, TINY)
