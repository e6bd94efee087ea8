"""The examples in the packages' docstrings are tests: every module of graph, ingest,
simulate, gnn and api that has a ``>>>`` example runs its doctests here (with ELLIPSIS, as
pytest's own doctest runner does), in a scratch working directory."""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graph", "ingest", "simulate", "gnn", "api")


def _modules_with_examples() -> list[str]:
    """The dotted names of the packages' modules whose source holds a ``>>>`` example (found
    without importing them, so that collecting the tests stays fast)."""
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_packages_have_examples() -> None:
    assert {m.split(".")[0] for m in MODULES} >= {"graph", "ingest", "simulate"}


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test, out=report.write)
    assert runner.tries > 0, f"{name} has '>>> ' in its source but no doctest was found"
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples of {name} " \
                                 f"failed:\n{report.getvalue()}"
