"""The ingest tests' chain: one Hardhat node per session with the scripted history played."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testchain import Chain, hardhat_node, play_history


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    log = tmp_path_factory.mktemp("hardhat") / "node.log"
    with hardhat_node(log) as url:
        yield play_history(url)
