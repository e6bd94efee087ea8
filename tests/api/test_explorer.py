"""The graph explorer: the page and its files over HTTP, and a real browser (Debian's
Chromium driven by playwright-core) using it against a running server. Screenshots are kept
in ``build/test-artifacts/explorer/``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apiserver import ApiServer, open_backend, start_server

from api.keys import KeyStore
from api.settings import ApiSettings
from ingest.generate import generate_ecosystem

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "explorer"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           key_file: tuple[KeyStore, dict[str, str]]) -> Iterator[ApiServer]:
    where = tmp_path_factory.mktemp("explorer")
    store = open_backend("memory", where, generate_ecosystem(1000, 3))
    api = start_server(store, *key_file, "memory", ApiSettings(runs_dir=where / "runs"))
    api.gql("mutation { rescore { count } }", role="admin")  # the shipped model's scores
    yield api
    api.stop()
    store.close()


def test_page_and_files_are_served_without_a_key(server: ApiServer) -> None:
    page = httpx.get(f"{server.url}/explore")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' ws: wss:" in csp
    for src in ("/explore/static/explorer.js", "/explore/static/vendor/cytoscape.min.js"):
        assert f'src="{src}"' in page.text
        r = httpx.get(f"{server.url}{src}")
        assert r.status_code == 200 and len(r.content) > 1000, src
    # the data still needs a key
    r = httpx.post(f"{server.url}/graphql", json={"query": "{ stats { labels { name } } }"})
    assert r.status_code == 401


def test_explorer_in_a_real_browser(server: ApiServer) -> None:
    assert CHROMIUM.exists(), (f"{CHROMIUM} is missing: the test set-up (scripts/test) "
                               "installs Debian's chromium package")
    node = shutil.which("node")
    assert node, "Node.js is required to drive the browser (playwright-core)"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    r = subprocess.run([node, str(ROOT / "tests" / "browser" / "explorer.mjs"), server.url,
                        server.tokens["analyst"], str(ARTIFACTS), "stETH", "eth-35-steth-93"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: the details panel shows stETH (stETH (Asset))" in r.stdout
    assert "ok: scenario eth-35-steth-93: progress reached 100%" in r.stdout
    for shot in ("explorer-graph", "explorer-details", "explorer-scenario"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 10_000, shot
