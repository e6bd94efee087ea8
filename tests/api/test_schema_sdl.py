"""api/schema.graphql is the schema the code builds; CI runs this, so a stale file fails it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api.graphql.schema import SDL_PATH, schema_sdl

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.graphql.schema", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_committed_sdl_is_the_schema_of_the_code() -> None:
    assert SDL_PATH == ROOT / "api" / "schema.graphql"
    assert SDL_PATH.read_text("utf-8") == schema_sdl(), (
        "api/schema.graphql differs from the code: run `python -m api.graphql.schema --write`")


def test_check_and_write(tmp_path: Path) -> None:
    ok = _run("--check")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{SDL_PATH} is up to date"
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { old: Int }\n")
    r = _run("--check", "--path", str(stale))
    assert r.returncode == 1
    assert r.stderr.strip() == (f"{stale} differs from the schema in the code; run "
                                "`python -m api.graphql.schema --write`")
    assert _run("--write", "--path", str(stale)).returncode == 0
    assert stale.read_text("utf-8") == schema_sdl()
