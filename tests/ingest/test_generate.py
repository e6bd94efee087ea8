"""The ecosystem generator: determinism, validity, health factors, structure, sources, and
amounts rounded so that the committed sample's bytes do not depend on the machine."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MARKET_DATA
from pydantic import ValidationError

import simulate.formulas.black_scholes as black_scholes
from graph.export import compile_system, health_factors
from graph.snapshot import Snapshot
from ingest.generate import (
    AMOUNT_DIGITS,
    AS_OF,
    GeneratorConfig,
    ProtocolShares,
    generate_ecosystem,
    load_risk_params,
    round_amounts,
)

AAVE_ONCHAIN = (MARKET_DATA / "aave_reserve_params"
                / "aave_v3_ethereum_snapshot_2023-09_reserves_flat.csv")
LENDING_POOLS_PREFIXES = ("aave-v3:", "compound-v3:", "maker:", "isolend:")


def phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return generate_ecosystem(50_000, seed=2023)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = generate_ecosystem(3_000, seed=11).save(tmp_path / "a")
    b = generate_ecosystem(3_000, seed=11).save(tmp_path / "b")
    names = sorted(f.name for f in a.iterdir())
    assert names == sorted(f.name for f in b.iterdir())
    assert len(names) == 14  # 13 tables and the manifest
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seed_gives_different_ecosystem(tmp_path: Path) -> None:
    a = generate_ecosystem(3_000, seed=11)
    b = generate_ecosystem(3_000, seed=12)
    assert not a.equals(b, check_manifest=False)
    assert not a["position_collateral"]["amount"].equals(b["position_collateral"]["amount"])
    # the fixed layer (protocols, assets, oracles, risk parameters) does not depend on the seed
    for table in ("assets", "oracles", "pools", "pool_collateral"):
        assert a[table].equals(b[table]), table


def test_save_load_round_trip_and_rebuild_from_manifest(tmp_path: Path) -> None:
    cfg = GeneratorConfig(dealers=2, hf_tail_share=0.4, liquidity_scale=0.01)
    snap = generate_ecosystem(1_000, seed=5, config=cfg)
    loaded = Snapshot.load(snap.save(tmp_path / "s"))
    assert loaded.equals(snap)
    # the manifest alone reproduces the snapshot
    params = dict(loaded.manifest.params)
    n, seed = params.pop("positions"), params.pop("seed")
    rebuilt = generate_ecosystem(n, seed, GeneratorConfig.model_validate(params))
    assert rebuilt.equals(snap)


# ----------------------------------------------------------------------------- validity


@pytest.mark.parametrize("n", [100, 1_000, 25_000])
def test_valid_snapshot_with_requested_positions(n: int) -> None:
    snap = generate_ecosystem(n, seed=n)  # validated by Snapshot.from_tables
    cfg = GeneratorConfig()
    assert snap.num_rows("positions") == n
    assert snap.manifest.source == "generated"
    assert snap.manifest.as_of == AS_OF
    assert snap.manifest.params["positions"] == n
    assert snap.manifest.params["seed"] == n
    assert snap.manifest.params["shares"] == cfg.shares.model_dump()
    assert snap.manifest.params["no_debt_share"] == cfg.no_debt_share
    assert (snap["accounts"]["kind"] == "dealer").sum() == cfg.dealers


def test_ids_are_readable_and_zero_padded(snap: Snapshot) -> None:
    pos = snap["positions"]
    assert pos["id"].str.fullmatch(r"pos:[a-z0-9-]+:[A-Za-z0-9-]+:\d{6}").all()
    assert (pos["id"].str.rsplit(":", n=1).str[0] == "pos:" + pos["pool"]).all()
    acct = snap["accounts"]["id"]
    assert acct.str.fullmatch(r"acct:(\d{6}|dealer:\d{2})").all()
    assert {"aave-v3", "aave-v3:main", "WETH", "aWETH", "oracle:WETH"} <= set(
        pd.concat([snap[t]["id"] for t in ("protocols", "pools", "assets", "oracles")]))


def test_positions_follow_the_configured_shares(snap: Snapshot) -> None:
    pools = snap["positions"]["pool"]
    proto = pools.str.split(":").str[0].value_counts(normalize=True)
    shares = GeneratorConfig().shares
    for name, share in (("aave-v3", shares.aave_v3), ("compound-v3", shares.compound_v3),
                        ("maker", shares.maker), ("isolend", shares.isolend),
                        ("deribit", shares.deribit)):
        assert proto[name] == pytest.approx(share, abs=0.01), name


def test_accounts_hold_one_position_per_pool_except_maker_vaults(snap: Snapshot) -> None:
    pos = snap["positions"]
    per_account = pos.groupby("account").size()
    assert (per_account <= 2).mean() > 0.9  # most accounts hold one or two positions
    assert per_account.max() >= 20  # and a few whales many
    others = pos[~pos["pool"].str.startswith("maker:")]
    assert not others.duplicated(["account", "pool"]).any()


# ----------------------------------------------------------------------------- leverage


def test_hf_mixture_share_below_1_5() -> None:
    cfg = GeneratorConfig()
    # 0.05 (near) + 0.70·Φ(ln 2 / 0.5) + 0.25·Φ(ln(1/3) / 1.0)
    expected = 0.05 + 0.70 * phi(math.log(2) / 0.5) + 0.25 * phi(math.log(1 / 3))
    assert cfg.hf_cdf(1.5) == pytest.approx(expected, rel=1e-12)
    assert cfg.hf_cdf(1.5) == pytest.approx(0.7260, abs=1e-4)
    assert cfg.hf_cdf(1.0) == 0.0
    assert cfg.hf_cdf(1.05) == pytest.approx(0.05 + 0.70 * phi(math.log(0.2) / 0.5)
                                             + 0.25 * phi(math.log(0.05 / 1.5)), rel=1e-12)


def test_health_factors_are_at_least_one_and_mostly_below_1_5(snap: Snapshot) -> None:
    system = compile_system(snap)
    hf = health_factors(system)
    debt = np.isfinite(hf)
    assert hf.min() >= 1.0
    cfg = GeneratorConfig()
    share = float(np.mean(hf[debt] <= 1.5))
    assert share == pytest.approx(cfg.hf_cdf(1.5), abs=0.01)  # about 0.726
    assert np.mean(hf[debt] <= 1.05) == pytest.approx(cfg.hf_cdf(1.05), abs=0.005)
    assert np.mean(hf[debt] > 3.0) > 0.05  # a long tail
    # positions with debt are lending / CDP positions, and about 1 - no_debt_share of them
    lending = snap["positions"]["pool"].str.startswith(LENDING_POOLS_PREFIXES).to_numpy()
    assert not debt[~lending].any()
    assert debt[lending].mean() == pytest.approx(1 - cfg.no_debt_share, abs=0.01)


def test_collateral_and_debt_counts_and_assets(snap: Snapshot) -> None:
    pos = snap["positions"].set_index("id")
    coll, debt = snap["position_collateral"], snap["position_debt"]
    lending = pos.index[pos["pool"].str.startswith(LENDING_POOLS_PREFIXES)]
    n_coll = coll.groupby("position").size().reindex(lending, fill_value=0)
    n_debt = debt.groupby("position").size().reindex(lending, fill_value=0)
    assert n_coll.between(1, 3).all() and set(n_coll.unique()) == {1, 2, 3}
    assert n_debt.between(0, 2).all() and set(n_debt.unique()) == {0, 1, 2}
    both = coll.merge(debt, on=["position", "asset"])
    assert both.empty  # a position never borrows one of its collateral assets


def test_position_sizes_are_heavy_tailed(snap: Snapshot) -> None:
    system = compile_system(snap)
    value = np.sort(system.collateral @ system.price)[::-1]
    top = value[: len(value) // 100].sum() / value.sum()
    assert top > 0.3  # the largest 1% of positions hold a large share of the value
    assert np.median(value) < value.mean() / 3


# ----------------------------------------------------------------------------- pool totals


def test_pool_lends_borrowed_is_the_sum_of_position_debt(snap: Snapshot) -> None:
    debt = snap["position_debt"].assign(
        pool=snap["position_debt"]["position"].map(snap["positions"].set_index("id")["pool"]))
    total = debt.groupby(["pool", "asset"])["amount"].sum()
    lends = snap["pool_lends"].set_index(["pool", "asset"])
    got = lends["borrowed"].reindex(total.index)
    np.testing.assert_allclose(got.to_numpy(), total.to_numpy(), rtol=1e-12)
    # lent assets nobody borrows have borrowed == 0
    assert (lends["borrowed"].drop(total.index) == 0).all()
    assert (lends["supplied"] >= lends["borrowed"]).all()


def test_utilisation_and_ceilings(snap: Snapshot) -> None:
    cfg = GeneratorConfig()
    lends = snap["pool_lends"]
    util = lends["borrowed"] / lends["supplied"]
    # where supply follows borrowing (every market but Aave, whose aTokens include collateral)
    # utilisation lies in the configured band; Maker ceilings are above the DAI minted
    driven = lends["pool"] != "aave-v3:main"
    assert util[driven].between(cfg.utilisation_min, cfg.utilisation_max).all()
    maker = lends[lends["pool"].str.startswith("maker:")]
    assert len(maker) == 3 and (maker["asset"] == "DAI").all()
    assert (maker["supplied"] > maker["borrowed"]).all()
    # Aave: supply of a lent asset covers the collateral posted in it
    aave = lends[lends["pool"] == "aave-v3:main"].set_index("asset")
    coll = snap["position_collateral"]
    in_aave = coll["position"].str.startswith("pos:aave-v3:main:")
    posted = coll[in_aave].groupby("asset")["amount"].sum()
    common = posted.index.intersection(aave.index)
    assert (aave.loc[common, "supplied"] >= posted[common] * (1 - 1e-12)).all()


def test_amm_reserves_match_prices(snap: Snapshot) -> None:
    price = snap["assets"].set_index("id")["price"]
    hold = snap["pool_holdings"]
    for pool in ("uniswap-v2:WETH-USDC", "uniswap-v2:WBTC-WETH", "uniswap-v2:BAL-WETH"):
        h = hold[hold["pool"] == pool]
        values = (h["amount"] * h["asset"].map(price)).to_numpy()
        assert len(values) == 2 and values[0] == pytest.approx(values[1], rel=1e-12), pool
    three = hold[hold["pool"] == "curve:3pool"].set_index("asset")["amount"]
    assert set(three.index) == {"DAI", "USDC", "USDT"} and three.nunique() == 1
    # stETH/ETH stableswap: more stETH than ETH, marginal price = snapshot stETH/ETH
    steth = hold[hold["pool"] == "curve:steth-eth"].set_index("asset")["amount"]
    x, y = steth["stETH"], steth["ETH"]
    pools = snap["pools"].set_index("id")
    amp = pools.loc["curve:steth-eth", "amplification"]
    assert amp == 50.0 and pools.loc["curve:3pool", "amplification"] == 2000.0
    d = x + y
    for _ in range(100):
        f = 4 * amp * (x + y) + d - 4 * amp * d - d**3 / (4 * x * y)
        d -= f / (1 - 4 * amp - 3 * d * d / (4 * x * y))
    marginal = (4 * amp + d**3 / (4 * x * x * y)) / (4 * amp + d**3 / (4 * x * y * y))
    assert x > y
    assert marginal == pytest.approx(price["stETH"] / price["ETH"], abs=1e-9)


# ----------------------------------------------------------------------------- structure


def test_prices_and_decimals(snap: Snapshot) -> None:
    a = snap["assets"].set_index("id")
    assert a.loc["ETH", "price"] == pytest.approx(1650, rel=0.01)
    assert a.loc["BTC", "price"] == pytest.approx(26_000, rel=0.01)
    assert a.loc["stETH", "price"] / a.loc["ETH", "price"] == pytest.approx(0.999)
    assert a.loc["wstETH", "price"] / a.loc["stETH", "price"] == pytest.approx(1.13, abs=0.01)
    for stable in ("USDC", "USDT", "DAI", "LUSD"):
        assert a.loc[stable, "price"] == pytest.approx(1.0)
    assert a.loc[["USDC", "USDT"], "decimals"].tolist() == [6, 6]
    assert a.loc[["WBTC", "BTC"], "decimals"].tolist() == [8, 8]
    assert a.loc["ETH", "market_depth_usd"] >= 1e7 and a.loc["BTC", "market_depth_usd"] >= 1e7
    assert 1e6 <= a.loc["USDC", "market_depth_usd"] < 1e8
    assert 1e5 <= a.loc["BAL", "market_depth_usd"] < 1e6
    # the package data and the generated assets agree on decimals
    rp = load_risk_params()
    assert (rp["decimals"].to_numpy() == a.loc[rp["asset"], "decimals"].to_numpy()).all()


def test_cross_holdings(snap: Snapshot) -> None:
    assets = snap["assets"].set_index("id")
    pc = snap["pool_collateral"].assign(
        protocol=snap["pool_collateral"]["pool"].map(snap["pools"].set_index("id")["protocol"]))
    pc = pc.assign(kind=pc["asset"].map(assets["kind"]), issuer=pc["asset"].map(assets["issuer"]))
    receipt = pc[(pc["kind"] == "receipt") & (pc["issuer"] != pc["protocol"])]
    assert set(receipt["asset"]) == {"aWETH", "yvWETH"}  # Aave's and Yearn's receipts reused
    lp = pc[(pc["kind"] == "lp") & (pc["issuer"] != pc["protocol"])]
    assert set(lp["asset"]) == {"steCRV"}
    assert {"aave-v3:main", "maker:WSTETH-A"} <= set(pc.loc[pc["asset"] == "wstETH", "pool"])
    dep = snap["protocol_deposits"]
    assert set(zip(dep["protocol"], dep["pool"], strict=True)) == {
        ("maker", "aave-v3:main"), ("maker", "curve:3pool"), ("yearn", "aave-v3:main")}
    assert (dep["amount_usd"] > 0).all()
    hold = snap["pool_holdings"]
    assert ((hold["pool"] == "yearn:yvWETH") & (hold["asset"] == "aWETH")).any()
    assert ((hold["pool"] == "lido:staking") & (hold["asset"] == "ETH")).any()
    assert assets.loc["wstETH", "pegged_to"] == "stETH" and assets.loc["stETH", "issuer"] == "lido"


def test_cross_holding_switches() -> None:
    cfg = GeneratorConfig(receipt_collateral=False, lp_collateral=False, protocol_deposits=False,
                          shares=ProtocolShares(aave_v3=0.6, compound_v3=0.1, maker=0.15,
                                                isolend=0.0, deribit=0.15))
    snap = generate_ecosystem(2_000, seed=1, config=cfg)
    assert not snap["pools"]["id"].str.startswith("isolend:").any()
    assert snap.num_rows("protocol_deposits") == 0
    hold = snap["pool_holdings"]
    assert ((hold["pool"] == "yearn:yvWETH") & (hold["asset"] == "WETH")).any()


def test_every_asset_has_an_oracle_and_some_read_pools(snap: Snapshot) -> None:
    assets, oracles = snap["assets"], snap["oracles"].set_index("id")
    assert assets["oracle"].notna().all()
    kind = assets.set_index("id")["oracle"].map(oracles["kind"])
    reads = assets.set_index("id")["oracle"].map(oracles["reads"])
    pool_kind = snap["pools"].set_index("id")["kind"]
    assert kind["BAL"] == "twap" and pool_kind[reads["BAL"]] == "amm"
    assert kind["wstETH"] == "exchange_rate" and reads["wstETH"] == "lido:staking"
    assert kind["USDC"] == "fixed" and kind["WETH"] == "feed"
    assert set(kind) >= {"feed", "twap", "exchange_rate", "fixed"}


def test_option_legs_and_dealers(snap: Snapshot) -> None:
    legs = snap["position_options"]
    pos = snap["positions"].set_index("id")
    kinds = snap["accounts"].set_index("id")["kind"]
    legs = legs.assign(account=legs["position"].map(pos["account"]))
    legs = legs.assign(account_kind=legs["account"].map(kinds))
    assert (legs["position"].map(pos["pool"]) == "deribit:margin").all()
    assert set(legs["asset"]) == {"BTC", "ETH"} and set(legs["kind"]) == {"call", "put"}
    assert (legs["side"] == "short").mean() > 0.6
    days = (legs["expiry"] - AS_OF.timestamp()) / 86400
    assert days.between(1, 90).all()
    assert legs["implied_vol"].between(0.4, 1.2).all()
    spot = legs["asset"].map(snap["assets"].set_index("id")["price"])
    k = np.log(legs["strike"] / spot)
    assert k.abs().median() < 0.15  # strikes around spot
    assert legs.loc[k.abs() > 0.3, "implied_vol"].mean() > legs.loc[
        k.abs() < 0.05, "implied_vol"].mean() + 0.1  # a smile
    # dealers: short gamma (Black–Scholes gamma times size, summed with sign)
    dealers = legs[legs["account_kind"] == "dealer"]
    assert dealers["account"].nunique() == GeneratorConfig().dealers
    t = (dealers["expiry"] - AS_OF.timestamp()) / (365 * 86400)
    s = dealers["asset"].map(snap["assets"].set_index("id")["price"])
    sd = dealers["implied_vol"] * np.sqrt(t)
    d1 = (np.log(s / dealers["strike"]) + 0.5 * sd**2) / sd
    dollar_gamma = np.exp(-0.5 * d1**2) / np.sqrt(2 * np.pi) / (s * sd) * s**2 * dealers["size"]
    sign = np.where(dealers["side"] == "short", -1.0, 1.0)
    net = (sign * dollar_gamma).groupby(dealers["account"]).sum()
    assert (net < 0).all()
    # option accounts post collateral in BTC, ETH or USDC
    coll = snap["position_collateral"]
    opt_coll = coll[coll["position"].map(pos["pool"]) == "deribit:margin"]
    assert set(opt_coll["asset"]) == {"BTC", "ETH", "USDC"}


# ----------------------------------------------------------------------------- sources


def test_aave_parameters_agree_with_onchain_configuration() -> None:
    onchain = pd.read_csv(AAVE_ONCHAIN).set_index("symbol")
    ours = load_risk_params()
    ours = ours[ours["market"] == "aave-v3:main"].set_index("asset")
    assert set(ours.index) == set(onchain.index)
    on = onchain.loc[ours.index]
    np.testing.assert_allclose(ours["ltv"], on["ltv_bps"] / 10_000, atol=1e-12)
    np.testing.assert_allclose(ours["liquidation_threshold"], on["liq_threshold_bps"] / 10_000,
                               atol=1e-12)
    bonus = np.where(on["liq_bonus_bps"] > 0, on["liq_bonus_bps"] / 10_000 - 1.0, 0.0)
    np.testing.assert_allclose(ours["liquidation_bonus"], bonus, atol=1e-12)
    assert (ours["decimals"] == on["decimals"]).all()
    assert (ours["collateral"] == on["usage_as_collateral"]).all()
    assert (ours["borrowable"] == on["borrowing_enabled"]).all()
    assert ours.loc["WETH", "liquidation_bonus"] == pytest.approx(0.05)


def test_compound_and_maker_parameters() -> None:
    rp = load_risk_params().set_index(["market", "asset"])
    assert tuple(rp.loc[("compound-v3:cusdcv3", "WETH"),
                        ["ltv", "liquidation_threshold", "liquidation_bonus"]]) == pytest.approx(
        (0.825, 0.895, 0.05))
    assert rp.loc[("compound-v3:cusdcv3", "COMP"), "liquidation_bonus"] == pytest.approx(0.12)
    assert rp.loc[("maker:ETH-A", "WETH"), "liquidation_threshold"] == pytest.approx(1 / 1.45)
    assert rp.loc[("maker:WSTETH-A", "wstETH"), "liquidation_threshold"] == pytest.approx(1 / 1.5)
    assert rp.loc[("maker:WBTC-A", "WBTC"), "liquidation_bonus"] == pytest.approx(0.13)
    borrowable = rp[rp["borrowable"]].reset_index()
    assert set(borrowable.loc[borrowable["market"] == "compound-v3:cusdcv3", "asset"]) == {"USDC"}


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("positions", [5, 99, 10_000_001, 1000.0, True, "1000"])
def test_positions_out_of_range_or_wrong_type(positions: object) -> None:
    with pytest.raises(ValueError, match=r"positions must be an integer between 100 and "
                                         r"10,000,000 \(got"):
        generate_ecosystem(positions, seed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, 1.5, None])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer \(got"):
        generate_ecosystem(1_000, seed=seed)  # type: ignore[arg-type]


def test_bad_config() -> None:
    with pytest.raises(TypeError, match="config must be a GeneratorConfig"):
        generate_ecosystem(1_000, seed=1, config={"dealers": 2})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"protocol shares must sum to 1 \(got 0.9\)"):
        ProtocolShares(aave_v3=0.4)
    with pytest.raises(ValidationError, match="hf_near_share \\+ hf_tail_share must be <= 1"):
        GeneratorConfig(hf_near_share=0.5, hf_tail_share=0.6)
    with pytest.raises(ValidationError, match="utilisation_min must be <= utilisation_max"):
        GeneratorConfig(utilisation_min=0.8, utilisation_max=0.5)
    with pytest.raises(ValidationError, match="position_usd_median"):
        GeneratorConfig(position_usd_median=0)
    with pytest.raises(ValidationError, match="frozen"):
        GeneratorConfig().dealers = 3  # type: ignore[misc]


SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_committed_sample_is_what_the_generator_produces(tmp_path: Path) -> None:
    """data/sample is `contagion generate --positions 1000 --seed 7 --out data/sample`, byte
    for byte (the Parquet footers name the pyarrow version, pinned by requirements.lock)."""
    sample = SAMPLE
    fresh = generate_ecosystem(1000, 7).save(tmp_path / "sample")
    for f in sorted(fresh.iterdir()):
        assert (sample / f.name).read_bytes() == f.read_bytes(), (
            f"data/sample/{f.name} is stale: regenerate it with "
            "`contagion generate --positions 1000 --seed 7 --out data/sample`")


# ----------------------------------------------------------------------------- rounding


def test_round_amounts_by_hand() -> None:
    """Grids: 1234.56789123456 (18 decimals) keeps 9 significant digits, 1234.56789 (grid
    1e-5); 0.000123456789123 the same, grid 1e-12; 2e-9 of an 8-decimal token is below half a
    base unit but positive, so it becomes one base unit, 1e-8; 123,456,789,012.3 (6 decimals)
    is on the grid 1e3 (12 digits before the point, 9 kept); USDC's 1.5e-6 is a tie, to even
    (2e-6). Down: 1.23456789987 -> 1.23456789, 9,876,543.219 (6 decimals) -> 9,876,543.21, and
    4e-9 of an 8-decimal token -> 0."""
    got = round_amounts(np.array([1234.56789123456, 0.000123456789123, 2e-9, 123_456_789_012.3,
                                  1.5e-6, 0.0]),
                        np.array([18, 18, 8, 6, 6, 6]))
    assert got.tolist() == [1234.56789, 0.000123456789, 1e-08, 123_456_789_000.0, 2e-06, 0.0]
    down = round_amounts(np.array([1.23456789987, 9_876_543.219, 4e-9]), np.array([18, 6, 8]),
                         down=True)
    assert down.tolist() == [1.23456789, 9876543.21, 0.0]
    assert AMOUNT_DIGITS == 9


def test_generated_amounts_are_on_their_grids(snap: Snapshot) -> None:
    """Every position amount and option size lies on its token's grid (rounding it again
    changes nothing), implied vols have 4 decimals, and no generated amount is zero."""
    decimals = snap["assets"].set_index("id")["decimals"]
    for table, column in (("position_collateral", "amount"), ("position_debt", "amount"),
                          ("position_options", "size")):
        df = snap[table]
        x = df[column].to_numpy()
        assert (x > 0).all(), table
        np.testing.assert_array_equal(round_amounts(x, df["asset"].map(decimals).to_numpy()), x,
                                      err_msg=table)
    iv = snap["position_options"]["implied_vol"].to_numpy()
    np.testing.assert_array_equal(np.round(iv, 4), iv)


@pytest.mark.parametrize("direction", [np.inf, -np.inf], ids=["ulp-up", "ulp-down"])
def test_sample_bytes_survive_last_bit_differences(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, direction: float) -> None:
    """Another build of numpy or scipy (or another CPU) may give exp, log and the normal CDF
    one ulp away from this one. Here every such result is moved one ulp up (or down) and the
    generator still writes data/sample byte for byte: its rounded amounts lie at least 4.6e-13
    (relative, about 4,000 ulps) from a rounding boundary, its implied vols and strikes
    further still."""
    for name in ("exp", "log"):
        f = getattr(np, name)
        monkeypatch.setattr(np, name, lambda *a, _f=f, **k: np.nextafter(_f(*a, **k), direction))
    ndtr = black_scholes.ndtr
    monkeypatch.setattr(black_scholes, "ndtr", lambda x: np.nextafter(ndtr(x), direction))
    fresh = generate_ecosystem(1000, 7).save(tmp_path / "sample")
    for f in sorted(fresh.iterdir()):
        assert (SAMPLE / f.name).read_bytes() == f.read_bytes(), f.name


def test_sample_bytes_do_not_depend_on_numpys_cpu_dispatch(tmp_path: Path) -> None:
    """numpy computes exp and log with AVX-512 code on a CPU that has it and with other code
    elsewhere; the two differ in the last bit for some inputs (the generator before rounding
    wrote different data/sample files on the two). With AVX-512 dispatch switched off
    (NPY_DISABLE_CPU_FEATURES) the generator still writes data/sample byte for byte."""
    from numpy._core._multiarray_umath import (  # type: ignore[attr-defined]
        __cpu_baseline__,
        __cpu_features__,
    )

    off = [f for f, on in __cpu_features__.items()
           if on and f not in __cpu_baseline__ and (f.startswith("AVX512") or f == "X86_V4")]
    if not off:
        pytest.skip("no AVX-512 on this CPU: numpy has one code path for exp and log here")
    out = tmp_path / "sample"
    code = ("import sys; from ingest.generate import generate_ecosystem; "
            "generate_ecosystem(1000, 7).save(sys.argv[1])")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(off)}
    subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True, timeout=300)
    for f in sorted(out.iterdir()):
        assert (SAMPLE / f.name).read_bytes() == f.read_bytes(), f.name
