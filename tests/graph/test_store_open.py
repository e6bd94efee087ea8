"""Opening stores by URI: a store file that is not there is an error for a reader, and a new
store for a writer (``create=True``); never an empty graph shown in place of a misspelt path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers import tiny_snapshot

from graph.errors import StoreError
from graph.store import GraphStore, MemoryStore, open_store

NEO4J_URI = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687")  # as tests/conftest.py


def _missing(path: Path) -> str:
    return re.escape(f"store file memory:{path} does not exist (`contagion load` or "
                     "`contagion ingest` creates it)")


def test_reading_a_missing_store_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "store.zip"
    with pytest.raises(StoreError, match=f"^{_missing(path)}$"):
        open_store(f"memory:{path}")
    with pytest.raises(StoreError, match=f"^{_missing(path)}$"):
        open_store(f"memory:{path}", create=False)
    with pytest.raises(StoreError, match=f"^{_missing(path)}$"):
        MemoryStore(path, create=False)
    assert not path.parent.exists()  # nothing was created on the way


def test_a_writer_creates_the_store_file_with_its_first_write(tmp_path: Path) -> None:
    path = tmp_path / "new" / "store.zip"
    with open_store(f"memory:{path}", create=True) as store:
        assert store.uri == f"memory:{path}"
        assert store.stats().labels["Position"] == 0
        assert not path.exists()  # opening writes nothing
        store.write_snapshot(tiny_snapshot())
    assert path.is_file()
    with open_store(f"memory:{path}") as store:  # a reader now finds it
        assert store.read_snapshot().equals(tiny_snapshot(), check_manifest=False)


def test_memory_store_constructor_still_creates_by_default(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "store.zip")
    assert store.stats().labels["Pool"] == 0


def test_an_in_process_store_needs_no_file() -> None:
    for create in (False, True):
        with open_store("memory:", create=create) as store:
            assert store.uri == "memory:" and store.stats().labels["Pool"] == 0


@pytest.mark.parametrize("content", [None, b"not a zip"])
def test_a_path_that_is_not_a_store_file_is_an_error(tmp_path: Path,
                                                     content: bytes | None) -> None:
    path = tmp_path / "store.zip"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for create in (False, True):
        with pytest.raises(StoreError, match=f"^{re.escape(str(path))}: not a contagion memory "
                                             "store file"):
            open_store(f"memory:{path}", create=create)


def test_a_neo4j_store_opens_in_either_mode(neo4j_store: GraphStore) -> None:
    for create in (False, True):
        with open_store(NEO4J_URI, create=create) as store:
            assert store.stats().labels.keys() == neo4j_store.stats().labels.keys()
