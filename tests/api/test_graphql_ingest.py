"""The admin-only ingest mutation over real HTTP on both stores: files under the server's
ingest root go into the served store; bad files are named (file, row, field) and leave the
store as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer, serve_backend
from helpers import tiny_snapshot

from api.keys import KeyStore
from api.settings import ApiSettings

ASSETS = "asset,symbol,price,decimals,kind\nWETH,WETH,2000,18,wrapped\nUSDC,USDC,1,6,stable\n"
MARKETS = ("protocol,pool,asset,ltv,liquidation_threshold,liquidation_bonus,supplied,borrowed\n"
           "aave,aave:main,WETH,0.8,0.825,0.05,1000,100\n"
           "aave,aave:main,USDC,,,,500000,25000\n")
POSITIONS = ("account,pool,asset,collateral,debt\n"
             "alice,aave:main,WETH,10,\n"
             "alice,aave:main,USDC,,15000\n"
             "bob,aave:main,WETH,2.5,0\n")

INGEST = """mutation($path: String!) { ingest(path: $path) { __typename
  ... on Ingested { snapshot changed added { name count } updated { name count }
                    removed { name count } }
  ... on IngestFailed { message source row field } } }"""

PROTOCOLS = "{ protocols { edges { node { id } } } }"


def _dir(d: Path, **files: str) -> None:
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name.replace("_", ".")).write_text(text)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("ingest-root")
    _dir(r / "good", assets_csv=ASSETS, markets_csv=MARKETS, positions_csv=POSITIONS)
    _dir(r / "bad", assets_csv=ASSETS, markets_csv=MARKETS,
         positions_csv=POSITIONS.replace("alice,aave:main,USDC,,15000",
                                         "alice,aave:main,USDC,,-15000"))
    tiny_snapshot().save(r / "tiny")
    (tmp_path_factory.getbasetemp() / "outside").mkdir(exist_ok=True)
    return r


@pytest.fixture(scope="module", params=["memory", "neo4j"])
def admin_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              key_file: tuple[KeyStore, dict[str, str]], root: Path) -> Iterator[ApiServer]:
    yield from serve_backend(request, tmp_path_factory, key_file, tiny_snapshot(),
                             ApiSettings(ingest_root=root))


def _ids(api: ApiServer) -> list[str]:
    return [e["node"]["id"] for e in api.gql(PROTOCOLS).data["protocols"]["edges"]]


def _ingest(api: ApiServer, path: str, role: str = "admin") -> dict[str, Any]:
    return api.gql(INGEST, {"path": path}, role=role).data["ingest"]  # type: ignore[no-any-return]


def test_only_admins_ingest(admin_api: ApiServer, api: ApiServer) -> None:
    for role in ("viewer", "analyst"):
        r = admin_api.gql(INGEST, {"path": "good"}, role=role)
        assert r.error == (f"Mutation.ingest needs the admin role or higher (this API key has "
                           f"{role})", "FORBIDDEN")
    r = api.gql(INGEST, {"path": "good"}, role="admin")  # a server without an ingest root
    assert r.error == ("ingest is disabled on this server (start it with --ingest-root DIR)",
                       "FORBIDDEN")


def test_paths_stay_inside_the_root(admin_api: ApiServer) -> None:
    for path, why in [("../outside", "stay inside"), ("good/../../outside", "stay inside"),
                      ("/etc", "be relative to"), ("", "be relative to")]:
        assert _ingest(admin_api, path) == {
            "__typename": "IngestFailed", "message": f"path must {why} the server's ingest "
                                                     f"root (got {path!r})",
            "source": None, "row": None, "field": "path"}
    got = _ingest(admin_api, "missing")
    assert got == {"__typename": "IngestFailed", "message": "missing: no such file or directory",
                   "source": "missing", "row": None, "field": None}


def test_bad_files_are_named_and_the_store_unchanged(admin_api: ApiServer) -> None:
    before = _ids(admin_api)
    assert _ingest(admin_api, "bad") == {
        "__typename": "IngestFailed",
        "message": "bad/positions.csv, row 2, field 'debt': must be >= 0 (got -15000.0)",
        "source": "bad/positions.csv", "row": "2", "field": "debt"}
    assert _ids(admin_api) == before == ["aave", "curve", "deribit", "lido"]


def test_ingest_replaces_the_served_snapshot(admin_api: ApiServer) -> None:
    try:
        got = _ingest(admin_api, "good")
        assert got["__typename"] == "Ingested" and got["snapshot"] == "good"
        assert got["changed"] and {"name": "Protocol", "count": 3} in got["removed"]
        assert _ids(admin_api) == ["aave"]
        again = _ingest(admin_api, "good")
        assert (again["changed"], again["added"], again["updated"], again["removed"]) == (
            False, [], [], [])
    finally:
        back = _ingest(admin_api, "tiny")
        assert back["__typename"] == "Ingested"
    assert _ids(admin_api) == ["aave", "curve", "deribit", "lido"]
