"""Snapshot validation (one test per rule), canonical form and the on-disk format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import TINY_MANIFEST, tiny_records, tiny_snapshot
from hypothesis import given, settings
from strategies import snapshots

from graph.errors import SnapshotFormatError, SnapshotValidationError
from graph.snapshot import Snapshot


def _with(table: str, match: dict[str, Any], **changes: Any) -> dict[str, list[dict[str, Any]]]:
    """The tiny records with the row of ``table`` matching ``match`` changed."""
    rec = tiny_records()
    row = next(r for r in rec[table] if all(r.get(k) == v for k, v in match.items()))
    row.update(changes)
    return rec


def _rejects(rec: dict[str, list[dict[str, Any]]], pattern: str) -> SnapshotValidationError:
    with pytest.raises(SnapshotValidationError, match=pattern) as e:
        Snapshot.from_records(rec, TINY_MANIFEST)
    return e.value


def test_negative_amount_is_rejected() -> None:
    e = _rejects(_with("position_debt", {"position": "p1"}, amount=-5.0),
                 r"'amount' must be >= 0 \(got -5.0\) for position_debt p1/USDC")
    assert [(p.table, p.record, p.field) for p in e.problems] == [
        ("position_debt", "p1/USDC", "amount")]


def test_negative_pool_total_is_rejected() -> None:
    _rejects(_with("pool_lends", {"asset": "ETH"}, supplied=-1.0),
             r"'supplied' must be >= 0 \(got -1.0\) for pool_lends aave:main/ETH")


def test_unknown_asset_is_rejected() -> None:
    _rejects(_with("position_collateral", {"position": "p1"}, asset="DOGE"),
             r"'asset' refers to unknown asset 'DOGE' for position_collateral p1/DOGE")


def test_unknown_pool_is_rejected() -> None:
    _rejects(_with("positions", {"id": "p1"}, pool="maker:eth-a"),
             r"'pool' refers to unknown pool 'maker:eth-a' for positions p1")


def test_unknown_account_is_rejected() -> None:
    _rejects(_with("positions", {"id": "p2"}, account="mallory"),
             r"'account' refers to unknown account 'mallory' for positions p2")


def test_dangling_relationship_is_rejected() -> None:
    rec = tiny_records()
    rec["position_debt"].append({"position": "p9", "asset": "USDC", "amount": 1.0})
    _rejects(rec, r"'position' refers to unknown position 'p9' for position_debt p9/USDC")


def test_unknown_issuer_oracle_and_peg_are_rejected() -> None:
    e = _rejects(_with("assets", {"id": "stETH"}, issuer="rocket", oracle="oracle:x",
                       pegged_to="BTC"), "unknown")
    assert sorted(p.field for p in e.problems) == ["issuer", "oracle", "pegged_to"]


@pytest.mark.parametrize("lt", [0.0, 1.3, -0.1])
def test_liquidation_threshold_outside_unit_interval_is_rejected(lt: float) -> None:
    _rejects(_with("pool_collateral", {"asset": "ETH"}, liquidation_threshold=lt, ltv=0.0),
             rf"'liquidation_threshold' must be in \(0, 1\] \(got {lt!r}\) "
             r"for pool_collateral aave:main/ETH")


def test_ltv_above_liquidation_threshold_is_rejected() -> None:
    e = _rejects(_with("pool_collateral", {"asset": "stETH"}, ltv=0.85),
                 r"'ltv' must be <= 'liquidation_threshold' \(0.8\) \(got 0.85\) "
                 r"for pool_collateral aave:main/stETH")
    assert e.problems[0].field == "ltv"


@pytest.mark.parametrize("lb", [-0.01, 0.51])
def test_liquidation_bonus_outside_range_is_rejected(lb: float) -> None:
    _rejects(_with("pool_collateral", {"asset": "ETH"}, liquidation_bonus=lb),
             rf"'liquidation_bonus' must be in \[0, 0.5\] \(got {lb!r}\) "
             r"for pool_collateral aave:main/ETH")


@pytest.mark.parametrize(("price", "pattern"), [
    (float("nan"), r"'price' is required and must be a finite number \(got nan\) for assets ETH"),
    (float("inf"), r"'price' must be a finite number \(got inf\) for assets ETH"),
    (0.0, r"'price' must be > 0 \(got 0.0\) for assets ETH"),
    (-3.0, r"'price' must be > 0 \(got -3.0\) for assets ETH"),
])
def test_bad_prices_are_rejected(price: float, pattern: str) -> None:
    _rejects(_with("assets", {"id": "ETH"}, price=price), pattern)


def test_duplicate_id_in_one_table_is_rejected() -> None:
    rec = tiny_records()
    rec["accounts"].append({"id": "bob", "kind": "user"})
    _rejects(rec, r"duplicate 'id' 'bob' for accounts bob")


def test_id_shared_by_two_node_tables_is_rejected() -> None:
    rec = tiny_records()
    rec["accounts"].append({"id": "ETH", "kind": "user"})
    _rejects(rec, r"'id' 'ETH' is already the id of a record in assets for accounts ETH")


def test_duplicate_relationship_is_rejected() -> None:
    rec = tiny_records()
    rec["position_collateral"].append({"position": "p1", "asset": "ETH", "amount": 2.0})
    _rejects(rec, r"duplicate relationship position/asset for position_collateral p1/ETH")


def test_collateral_not_accepted_by_the_pool_is_rejected() -> None:
    rec = tiny_records()
    rec["position_collateral"].append({"position": "p1", "asset": "USDC", "amount": 2.0})
    _rejects(rec, r"'asset' 'USDC' is not accepted as collateral by the position's pool "
                  r"'aave:main' for position_collateral p1/USDC")


def test_debt_not_lent_by_the_pool_is_rejected() -> None:
    rec = tiny_records()
    rec["position_debt"].append({"position": "p4", "asset": "USDC", "amount": 2.0})
    _rejects(rec, r"'asset' 'USDC' is not lent by the position's pool 'deribit:margin'")


def test_borrowed_above_supplied_is_rejected() -> None:
    _rejects(_with("pool_lends", {"asset": "USDC"}, borrowed=2e6),
             r"'borrowed' must be <= 'supplied' \(1000000.0\) \(got 2000000.0\) "
             r"for pool_lends aave:main/USDC")


def test_unknown_enumeration_value_is_rejected() -> None:
    _rejects(_with("protocols", {"id": "aave"}, kind="bank"),
             r"'kind' must be one of lending, cdp, .* \(got 'bank'\) for protocols aave")


def test_wrong_type_is_rejected() -> None:
    _rejects(_with("assets", {"id": "USDC"}, decimals="six"),
             r"'decimals' must be an integer \(got 'six'\) for assets USDC")
    _rejects(_with("assets", {"id": "USDC"}, decimals=6.5),
             r"'decimals' must be an integer \(got 6.5\) for assets USDC")


def test_missing_required_field_is_rejected() -> None:
    _rejects(_with("positions", {"id": "p1"}, account=None),
             r"'account' is required \(got null\) for positions p1")


def test_unknown_and_missing_columns_are_rejected() -> None:
    frames = {n: pd.DataFrame(rows) for n, rows in tiny_records().items()}
    frames["accounts"] = frames["accounts"].rename(columns={"kind": "type"})
    with pytest.raises(SnapshotValidationError,
                       match=r"expected columns \['id', 'kind'\]: missing columns \['kind'\]; "
                             r"unknown columns \['type'\]"):
        Snapshot.from_tables(frames, TINY_MANIFEST)


def test_unknown_table_is_rejected() -> None:
    with pytest.raises(SnapshotValidationError, match="unknown table 'vaults'"):
        Snapshot.from_tables({"vaults": pd.DataFrame()})


def test_every_problem_is_reported_at_once() -> None:
    rec = _with("assets", {"id": "ETH"}, price=-1.0)
    rec["position_debt"][0]["amount"] = -2.0
    e = _rejects(rec, "2 problems")
    assert {p.field for p in e.problems} == {"price", "amount"}


def test_canonical_form_ignores_row_order() -> None:
    rec = tiny_records()
    for rows in rec.values():
        rows.reverse()
    assert Snapshot.from_records(rec, TINY_MANIFEST).equals(tiny_snapshot())


def test_save_load_roundtrip_and_bytes_are_stable(tmp_path: Path) -> None:
    snap = tiny_snapshot()
    a = snap.save(tmp_path / "a")
    b = snap.save(tmp_path / "b")
    assert Snapshot.load(a).equals(snap)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(["manifest.json", *(f"{n}.parquet" for n in snap.tables)])
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["block"] == 18_000_000 and manifest["tables"]["positions"] == 4
    snap.save(a)  # replacing an existing snapshot directory
    assert Snapshot.load(a).equals(snap)


@settings(max_examples=40, deadline=None)
@given(snap=snapshots())
def test_any_snapshot_roundtrips_through_files(tmp_path_factory: pytest.TempPathFactory,
                                               snap: Snapshot) -> None:
    d = snap.save(tmp_path_factory.mktemp("snap") / "s")
    back = Snapshot.load(d)
    assert back.equals(snap), snap.describe_difference(back)


def test_truncated_table_file_is_rejected(tmp_path: Path) -> None:
    d = tiny_snapshot().save(tmp_path / "s")
    f = d / "position_collateral.parquet"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(SnapshotFormatError, match=r"position_collateral\.parquet: unreadable"):
        Snapshot.load(d)


def test_row_count_mismatch_is_rejected(tmp_path: Path) -> None:
    d = tiny_snapshot().save(tmp_path / "s")
    (d / "positions.parquet").write_bytes((tiny_snapshot().with_manifest(TINY_MANIFEST)
                                           .save(tmp_path / "t") / "accounts.parquet")
                                          .read_bytes())
    with pytest.raises(SnapshotFormatError, match=r"manifest says 4 rows, file has 3"):
        Snapshot.load(d)


def test_schema_version_and_missing_files_are_reported(tmp_path: Path) -> None:
    d = tiny_snapshot().save(tmp_path / "s")
    doc = json.loads((d / "manifest.json").read_text())
    doc["schema_version"] = 99
    (d / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(SnapshotFormatError, match=r"'schema_version' must be 1 \(got 99\)"):
        Snapshot.load(d)
    with pytest.raises(SnapshotFormatError, match="not a snapshot directory"):
        Snapshot.load(tmp_path / "nowhere")
    d2 = tiny_snapshot().save(tmp_path / "s2")
    (d2 / "pools.parquet").unlink()
    with pytest.raises(SnapshotFormatError, match=r"pools\.parquet: missing table file"):
        Snapshot.load(d2)
