"""The ``contagion`` command line.

Every command prints one clear error line (or, for an invalid snapshot, the list of problems)
and exits non-zero on failure, instead of a traceback; a usage error (an unknown command or
option, a missing option, a bad value) is one ``error: ... (see contagion COMMAND --help)``
line too, with exit code 2.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast, get_args

import numpy as np
import pandas as pd
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from graph.errors import ContagionError, SnapshotValidationError
from graph.export import SystemArrays, compile_system, exposure_by_protocol
from graph.snapshot import Snapshot
from graph.store import GraphStore, StoreStats, WriteSummary, open_store
from simulate.backtest import (
    METHOD_LABELS,
    MIN_WINDOW,
    BacktestResult,
    CoverageTest,
    check_window,
    default_window,
    var_backtest,
)
from simulate.cascade.run import RunResult, compare_runs
from simulate.market.volatility import VolSpec
from simulate.pipeline import (
    PipelineError,
    PriceHistory,
    RunRequest,
    StageProgress,
    SurfaceFile,
    execute_run,
    parse_price_histories,
)
from simulate.prices import FREQUENCIES, Closes, Frequency, log_returns, read_closes
from simulate.scenarios import MonteCarloScenario, Scenario, list_scenarios, load_scenario

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Systemic-contagion analytics for DeFi and crypto options.")
console = Console(stderr=True, soft_wrap=True)
out = Console()

StoreOpt = Annotated[str, typer.Option("--store", help="memory:PATH or bolt://HOST:PORT")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="model file (default: the shipped default model)")]


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as p:
        yield p


def _writer(p: Progress, description: str) -> Callable[[int, int], None]:
    task = p.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        p.update(task, completed=done, total=total)

    return update


def _load(path: Path) -> Snapshot:
    with console.status(f"reading {path}"):
        return Snapshot.load(path)


def _write(store: GraphStore, snap: Snapshot) -> WriteSummary:
    with _progress() as p:
        return store.write_snapshot(snap, progress=_writer(p, f"writing to {store.uri}"))


def _stats_table(stats: StoreStats) -> Table:
    t = Table(title="graph", show_edge=False)
    t.add_column("kind")
    t.add_column("name")
    t.add_column("count", justify="right")
    for k, v in stats.labels.items():
        t.add_row("node", k, f"{v:,}")
    for k, v in stats.relationships.items():
        t.add_row("relationship", k, f"{v:,}")
    return t


def _summary_table(summary: WriteSummary) -> Table:
    t = Table(title="write", show_edge=False)
    for c in ("label / type", "added", "updated", "removed"):
        t.add_column(c, justify="left" if c == "label / type" else "right")
    for k in summary.added:
        t.add_row(k, *(f"{getattr(summary, x)[k]:,}" for x in ("added", "updated", "removed")))
    return t


@app.command()
def generate(
    positions: Annotated[int, typer.Option(help="number of positions (100 to 10,000,000)")],
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same files")],
    out_dir: Annotated[Path, typer.Option("--out", help="snapshot directory to write")],
) -> None:
    """Generate a realistic ecosystem snapshot (deterministic for a seed)."""
    from ingest.generate import generate_ecosystem

    t0 = time.perf_counter()
    with console.status(f"generating {positions:,} positions (seed {seed})"):
        snap = generate_ecosystem(positions, seed)
    with console.status(f"writing {out_dir}"):
        snap.save(out_dir)
    rows = sum(len(df) for df in snap.tables.values())
    console.print(f"wrote {out_dir} ({rows:,} rows) in {time.perf_counter() - t0:.1f} s")


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="snapshot directory")]) -> None:
    """Check a snapshot directory; exit 0 if valid, else list every problem and exit 1."""
    snap = _load(path)
    counts = ", ".join(f"{n} {len(df):,}" for n, df in snap.tables.items() if len(df))
    out.print(f"valid: {path} ({counts})")


@app.command()
def load(path: Annotated[Path, typer.Argument(help="snapshot directory")],
         store: StoreOpt) -> None:
    """Write a snapshot into a store (idempotent: re-loading it changes nothing)."""
    snap = _load(path)
    with open_store(store, create=True) as s:
        summary = _write(s, snap)
    out.print(_summary_table(summary))


@app.command()
def stats(store: StoreOpt,
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Counts per node label and relationship type."""
    with open_store(store) as s:
        st = s.stats()
    if as_json:
        out.print_json(json.dumps(st.as_dict()))
    else:
        out.print(_stats_table(st))


def _ecosystem_summary(system: SystemArrays) -> Table:
    t = Table(title="positions by protocol (snapshot prices)", show_edge=False)
    for c in ("protocol", "positions", "collateral $", "debt $", "HF < 1.1", "median HF"):
        t.add_column(c, justify="left" if c == "protocol" else "right")
    for name, r in exposure_by_protocol(system, near=1.1).iterrows():
        t.add_row(str(name), f"{int(r.positions):,}", f"{r.collateral_usd:,.0f}",
                  f"{r.debt_usd:,.0f}", f"{int(r.below_near):,}",
                  "-" if np.isnan(r.median_hf) else f"{r.median_hf:.2f}")
    return t


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="output directory")] = Path(
        "contagion-demo"),
    prices: Annotated[list[str] | None, typer.Option(
        help="ASSET=FILE daily price history for the market model (repeat per asset); "
             "scripts/demo passes the BTC and ETH histories of data/market")] = None,
    positions: Annotated[int, typer.Option(help="positions in the sample ecosystem")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed (ecosystem and Monte Carlo)")] = 7,
    stress: Annotated[str, typer.Option(help="the stress scenario")] = "eth-35-steth-93",
    monte_carlo: Annotated[str, typer.Option(help="the Monte Carlo scenario")] = "gjr-fhs-10d",
    paths: Annotated[int, typer.Option(help="Monte Carlo paths")] = 2000,
    model_path: ModelOpt = None,
    serve_: Annotated[bool, typer.Option("--serve", help="then serve the API and the explorer "
                                                         "on the demo's store")] = False,
    port: Annotated[int, typer.Option(help="port for --serve")] = 8000,
) -> None:
    """The main job end to end on the embedded store: generate an ecosystem, load it, fit the
    market model, run a stress scenario and a Monte Carlo run through the cascade, score the
    graph with the fragility model and explain the top scores, print a summary and write the
    report (report.html and PNGs) into --out."""
    from api.fragility import reason, score_store
    from api.report import FragileNode, write_report
    from gnn.explain import explain_node
    from gnn.model import load_model
    from ingest.generate import generate_ecosystem

    if not prices:
        raise ValueError("the demo fits the market model on daily price histories: give "
                         "--prices ASSET=FILE (e.g. --prices ETH=eth.csv --prices BTC=btc.csv), "
                         "or run scripts/demo, which passes those of data/market")
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    with console.status(f"generating a {positions:,}-position ecosystem (seed {seed})"):
        snap = generate_ecosystem(positions, seed)
    snap.save(out_dir / "snapshot")
    store_uri = f"memory:{out_dir / 'store.zip'}"
    with open_store(store_uri, create=True) as store:
        summary = _write(store, snap)
        out.print(_summary_table(summary))
        out.print(_stats_table(store.stats()))
    system = compile_system(snap)
    out.print(_ecosystem_summary(system))
    runs: dict[str, RunResult] = {}
    with _progress() as p:
        for name in (stress, monte_carlo):
            sc = load_scenario(name)
            mc = isinstance(sc, MonteCarloScenario)
            request = _request(sc, prices=prices if mc else None,
                               paths=paths if mc else None, seed=seed if mc else None)
            runs[name] = execute_run(request, snapshot=snap,
                                     out=out_dir / "runs" / f"{name}.json",
                                     progress=_run_progress(p, request))
    model = load_model(model_path)
    with console.status("scoring the graph with the fragility model"), \
            open_store(store_uri) as store:
        scored = score_store(store, model, model_path=model_path)
        deps = store.system_graph()
    # the most fragile of each type: accounts would fill any overall top ten
    ranked = [(k, t, v) for t in ("protocol", "pool", "asset", "account")
              for k, v in sorted(scored.scores[t].items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    ranking: list[FragileNode] = []
    with _progress() as p:
        tick = _writer(p, "explaining the top scores")
        for i, (node, kind, value) in enumerate(ranked):
            ex = explain_node(model, scored.graph, node, top=5, steps=16)
            ranking.append(FragileNode(node, kind, value, reason(ex)))
            tick(i + 1, len(ranked))
    # the graph picture colours every scored protocol, pool and asset, not only the top ten
    colours = [FragileNode(k, t, v) for k, t, v in scored.ranked(len(deps.nodes) * 4)
               if k in deps.nodes]
    con = out if out.is_terminal else Console(width=132)
    con.print(_fragile_table(ranking))
    for name, run in runs.items():
        con.print(f"[bold]{name}[/bold] ({run.spec.paths:,} path"
                  f"{'s' if run.spec.paths != 1 else ''})")
        con.print(_risk_table(run.metrics))
        con.print(_paths_table(run.metrics))
    with console.status("writing the report"):
        report = write_report(out_dir, runs[monte_carlo], stress=runs[stress],
                              ranking=ranking + [c for c in colours if c.node_id not in
                                                 {r.node_id for r in ranking}],
                              graph=deps, asset_symbols=dict(zip(
                                  system.asset_ids, system.asset_symbols, strict=True)))
    out.print(f"report: {report.html}  store: {store_uri}  runs: {out_dir / 'runs'}  "
              f"({time.perf_counter() - t0:.1f} s)", highlight=False)
    if serve_:
        _demo_serve(out_dir, store_uri, prices, port)


def _fragile_table(ranking: list[Any]) -> Table:
    t = Table(title="most fragile nodes of each type (fragility model: predicted failure "
                    "probability; why, from each score's explanation)",
              show_edge=False)
    for c in ("node", "type", "score", "why"):
        t.add_column(c, justify="right" if c == "score" else "left")
    for r in ranking:
        t.add_row(r.node_id, r.node_type, f"{r.score:.3f}", r.reason)
    return t


def _demo_serve(out_dir: Path, store_uri: str, prices: list[str], port: int) -> None:
    """Serve the demo's store with an admin key made for it, and print the explorer's URL."""
    import logging

    from api.keys import KeyStore, Role
    from api.server import bind_socket, create_app, run_server
    from api.settings import ApiSettings

    keys = KeyStore(out_dir / "api-keys.json")
    _, secret = keys.create("demo", Role.ADMIN)
    settings = ApiSettings(runs_dir=out_dir / "api-runs", prices=_price_histories(prices))
    logging.basicConfig(level="WARNING",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bind_socket("127.0.0.1", port)
    bound = sock.getsockname()[1]
    with open_store(store_uri) as s:
        app_ = create_app(s, keys, settings)
        # plain lines: a wrapped URL or key cannot be copied
        print(f"explorer: http://127.0.0.1:{bound}/explore#key={secret}\n"
              f"GraphQL:  http://127.0.0.1:{bound}/graphql (Authorization: Bearer {secret}; "
              f"key file {keys.path}); Ctrl-C stops", flush=True)
        run_server(app_, sock, log_level="warning")


def _backtest_table(res: BacktestResult, asset: str, closes: Closes, *, available: int,
                    last: int | None) -> Table:
    spec = res.spec
    unit = "day" if res.frequency == "daily" else "hour"
    c = closes.summary()
    used = f"the last {res.returns:,} of {available:,}" if last is not None else f"{res.returns:,}"
    caption = [
        f"series: {c['closes']:,} {res.frequency} closes, {c['first']} .. {c['last']}; "
        f"{c['missing_values']:,} missing values, {c['missing_periods']:,} missing periods; "
        f"returns used: {used}",
        f"window {res.window:,} ({res.window_rule}); refit every {res.refit_every:,} "
        f"{unit}s; EWMA λ = {res.ewma_lambda:.5g}; pinball loss in basis points (×10⁴)",
    ]
    for m, msgs in res.rejections.items():
        if msgs:
            caption.append(f"{METHOD_LABELS[m]}: {len(msgs):,} refits rejected (last accepted "
                           f"parameters held; first: {msgs[0]})")
    t = Table(title=f"{asset}: {res.horizon} VaR backtest, {res.start} .. {res.end} "
                    f"({res.out_of_sample:,} {unit}s out of sample)",
              caption="\n".join(caption), caption_justify="left", show_edge=False)
    for col in ("method", "level", "periods", "breaches", "expected", "Kupiec p",
                "Christoffersen p", "cond. cov. p", "pinball (bp)", "refits", "rejected",
                "result"):
        t.add_column(col, justify="left" if col in ("method", "result") else "right")

    def p(test: CoverageTest | None) -> Text:
        if test is None:
            return Text("—")
        ok = test.passed
        return Text(f"{test.p_value:.3f} {'pass' if ok else 'fail'}",
                    style="green" if ok else "red")

    for r in res.rows:
        verdict = Text("pass", style="green") if r.passed else Text("fail", style="red")
        label = (f"model ({spec.model} {spec.dist})" if r.method == "model"
                 else METHOD_LABELS[r.method])
        fitted = r.method in ("garch-normal", "model")
        t.add_row(label, f"{r.level:.0%}", f"{r.observations:,}", f"{r.violations:,}",
                  f"{r.expected:,.1f}", p(r.kupiec), p(r.christoffersen), p(r.conditional),
                  "—" if r.pinball is None else f"{r.pinball * 1e4:.4f}",
                  f"{r.refits:,}" if fitted else "—", f"{r.rejected:,}" if fitted else "—",
                  verdict)
    return t


@app.command()
def backtest(
    prices: Annotated[Path, typer.Option(help="price CSV: timestamp,asset,close; CoinGecko "
                                               "daily date,price; or hourly "
                                               "symbol,timestamp,USD_price")],
    asset: Annotated[str, typer.Option(help="asset symbol (selects rows; labels the output)")],
    frequency: Annotated[str, typer.Option(
        help="daily or hourly: the closes read, the returns and the VaR horizon (one "
             "period)")] = "daily",
    window: Annotated[int | None, typer.Option(
        min=MIN_WINDOW, help="trailing returns each forecast uses (default: max(100, "
                             "min(1000, half the returns)); must leave at least 100 "
                             "out-of-sample periods)")] = None,
    refit_every: Annotated[int, typer.Option(
        min=1, help="refit the fitted models every K periods")] = 20,
    last: Annotated[int | None, typer.Option(
        min=1, help="use only the last N returns (window included)")] = None,
    model: Annotated[str, typer.Option(help="the project's model: gjr-garch, garch or "
                                            "egarch")] = "gjr-garch",
    dist: Annotated[str, typer.Option(help="its innovations: skewt, t or normal")] = "skewt",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Rolling one-period VaR (95%, 99%) of historical simulation, RiskMetrics EWMA-normal,
    GARCH(1,1)-normal and the project's model (--model/--dist), on the same out-of-sample
    periods: breaches against expected, Kupiec, Christoffersen and conditional-coverage
    p-values (pass = at least 5%; result = Kupiec and Christoffersen both pass) and the
    pinball loss (lower is better)."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"--frequency must be one of {', '.join(FREQUENCIES)} "
                         f"(got {frequency!r})")
    freq = cast(Frequency, frequency)
    for opt, value in (("model", model), ("dist", dist)):
        allowed = get_args(VolSpec.model_fields[opt].annotation)
        if value not in allowed:
            raise ValueError(f"--{opt} must be one of {', '.join(allowed)} (got {value!r})")
    spec = VolSpec.model_validate({"model": model, "dist": dist})
    closes = read_closes(prices, asset, freq)
    returns = log_returns(closes.series, freq)
    available = len(returns)
    if last is not None:
        if last > available:
            raise ValueError(f"--last {last:,} exceeds the {available:,} {freq} returns of "
                             f"{asset} in {prices}")
        returns = returns.iloc[-last:]
    if window is not None:
        check_window(len(returns), window, name="--window")
    else:
        try:
            default_window(len(returns))
        except ValueError as e:
            where = f"--last {last}" if last is not None else f"{prices}"
            raise ValueError(f"{where}: {e}") from None
    labels = {**METHOD_LABELS, "model": f"model {spec.model} {spec.dist}"}
    with _progress() as p:
        tick = _stage_progress(p)
        res = var_backtest(returns, frequency=freq, window=window, refit_every=refit_every,
                           spec=spec, asset=asset,
                           progress=lambda m, d, t: tick(f"{asset} {labels[m]}", d, t))
    if as_json:
        out.print_json(json.dumps({"asset": asset, "prices": str(prices),
                                   "series": closes.summary(), "returns_available": available,
                                   "last": last, **res.as_dict()}))
    else:
        # a table this wide needs more than the 80 columns rich assumes off a terminal
        (out if out.is_terminal else Console(width=160)).print(
            _backtest_table(res, asset, closes, available=available, last=last))


def _price_histories(prices: list[str] | None) -> tuple[PriceHistory, ...]:
    """The ``--prices ASSET=FILE`` options; an error names the option."""
    try:
        return parse_price_histories(prices or ())
    except PipelineError as e:
        raise ValueError(f"--prices: {e}") from None


def _surfaces(items: list[str] | None) -> tuple[SurfaceFile, ...]:
    """The ``--surface UNDERLYING=FILE`` options; an error names the option."""
    try:
        return tuple(SurfaceFile.parse(s) for s in items or ())
    except PipelineError as e:
        raise ValueError(f"--surface: {e}") from None


def _request(scenario: Scenario, *, prices: list[str] | None, **fields: Any) -> RunRequest:
    """The run request of a command's arguments; a field error names the option."""
    try:
        return RunRequest(scenario=scenario, prices=_price_histories(prices), **fields)
    except ValidationError as e:
        raise _option_error(e) from None


def _option_error(e: ValidationError, *, whole: str = "") -> ValueError:
    """One line for a model built from command-line options: a field's error names its
    option (``store_timeout_s`` → ``--store-timeout``) and the value given; a check of the
    whole keeps its message, after ``whole``."""
    err = e.errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:
        return ValueError(whole + msg)
    flag = "--" + str(err["loc"][0]).removesuffix("_s").replace("_", "-")
    return ValueError(f"{flag}: {msg.lower()} (got {err.get('input')!r})")


def _run_progress(p: Progress, request: RunRequest) -> StageProgress:
    """One bar for a run: its step, then the paths done."""
    task = p.add_task(request.scenario.name, total=request.run_paths)

    def update(stage: str, done: int, total: int) -> None:
        p.update(task, description=f"{request.scenario.name}: {stage}", completed=done,
                 total=total)

    return update


_LOSSES = (("bad debt", "bad_debt_usd"),
           ("liquidated (execution prices)", "liquidated_usd"),
           ("liquidated (snapshot prices)", "liquidated_snapshot_usd"))


def _risk_table(m: dict[str, Any]) -> Table:
    """Losses: one amount each for a single path (a fixed shock or a replay: no
    distribution), else mean, P(> 0), VaR and CVaR with their Monte Carlo errors."""
    losses = [(name, m[key]) for name, key in _LOSSES if key in m]
    if m["paths"] == 1:
        t = Table(title="losses of the stress path (USD; one deterministic path)",
                  show_edge=False)
        t.add_column("loss")
        t.add_column("USD", justify="right")
        for name, d in losses:
            t.add_row(name, f"{d['mean']:,.0f}")
        return t
    t = Table(title=f"loss distribution over {m['paths']:,} paths (USD, ± Monte Carlo s.e.)",
              show_edge=False)
    for c in ("loss", "mean", "P(> 0)", "VaR 95%", "CVaR 95%", "VaR 99%", "CVaR 99%"):
        t.add_column(c, justify="left" if c == "loss" else "right")
    for name, d in losses:
        cells = [f"{d['mean']:,.0f} ± {d['mean_se']:,.0f}", f"{d['p_positive']:.1%}"]
        for level in ("0.95", "0.99"):
            r = d[level]
            cells += [f"{r['var']:,.0f} ± {r['var_se']:,.0f}",
                      f"{r['cvar']:,.0f} ± {r['cvar_se']:,.0f}"]
        t.add_row(name, *cells)
    return t


def _usd_or_blank(v: float | None) -> str:
    return "" if v is None else f"{v:,.0f}"


def _failure_table(m: dict[str, Any]) -> Table:
    """Protocols with a failure or a loss (with the reserve their loss is judged against, and
    why one with losses did not fail), assets failed by the cascade, and scenario shocks."""
    single = m["paths"] == 1
    t = Table(title="failures (protocols: bad debt + cross-deposit losses beyond the reserve; "
              "assets: depeg or fire-sale loss beyond the threshold; shocks: the scenario's "
              "own moves)", show_edge=False)
    cols = ["node", "kind", "failed" if single else "P(fail)", "reserve $",
            "bad debt $" if single else "mean bad debt $",
            "cross-deposit loss $" if single else "mean cross-deposit loss $",
            *([] if single else ["CVaR 99% share $"]), "note"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("node", "kind", "note") else "right")
    fp, share = m["failure_probability"], m["marginal_contribution_usd"]["0.99"]

    def prob(p: float) -> str:
        return ("yes" if p > 0 else "no") if single else f"{p:.2%}"

    rows: list[tuple[float, str, list[str]]] = []
    for k, v in fp["protocol"].items():
        bad, cross = v.get("bad_debt_usd", 0.0), v.get("cross_loss_usd", 0.0)
        c = share.get(k, 0.0)
        if not (v["p"] > 0 or c > 0 or bad > 0 or cross > 0):
            continue
        note = ""
        reserve = v.get("reserve_usd")
        if v["p"] == 0 and reserve is not None:
            note = (f"bad debt + cross-deposit loss {'' if single else 'at most '}"
                    f"{v.get('max_loss_usd', bad + cross):,.0f} ≤ reserve {reserve:,.0f}: "
                    f"absorbed")
        rows.append((v["p"], k, [k, "protocol", prob(v["p"]), _usd_or_blank(reserve),
                                 f"{bad:,.0f}", f"{cross:,.0f}",
                                 *([] if single else [f"{c:,.0f}"]), note]))
    blank = [""] * (len(cols) - 4)
    for k, v in fp["asset"].items():
        if v["p"] > 0:
            rows.append((v["p"], k, [k, "asset", prob(v["p"]), *blank, ""]))
        if v.get("p_shock", 0.0) > 0:
            rows.append((v["p_shock"], k, [k, "shock", prob(v["p_shock"]), *blank,
                                           "scenario input past the threshold, not a "
                                           "failure"]))
    for _, _, cells in sorted(rows, key=lambda r: (-r[0], r[1])):
        t.add_row(*cells)
    return t


def _when(iso: str) -> str:
    """An ISO time as a date when it is a midnight, else to the minute."""
    return iso[:10] if iso.endswith("T00:00:00") else iso[:16].replace("T", " ")


def _inputs_table(inputs: dict[str, Any]) -> Table:
    """What a run used: how each asset moved (grouped), and per fitted asset its model's
    persistence (and whether it was bounded), estimated betas, pegs and missing prices."""
    t = Table(title="inputs used", show_edge=False)
    t.add_column("what")
    t.add_column("assets / values")
    groups: dict[str, list[str]] = {}
    for asset, how in inputs.get("moves", {}).items():
        groups.setdefault(how, []).append(asset)
    for how, assets in groups.items():
        t.add_row(how, ", ".join(assets))
    for asset, iv in inputs.get("implied_vol", {}).items():
        if iv["source"] == "surface":
            d = iv["dynamics"]
            t.add_row(f"options on {asset}", f"marked from the SVI surface of "
                      f"{iv['underlying']} as of {iv['as_of'][:10]} ({len(iv['expiries'])} "
                      f"expiries); spot-vol {d['source']} (down {d['down']:.2f}, up "
                      f"{d['up']:.2f})")
        else:
            t.add_row(f"options on {asset}", "stored implied vols times the scenario's "
                                             "multiplier")
    market = inputs.get("market")
    if market:
        spec = market["volatility"]
        t.add_row("market model", f"{spec['model']} {spec['dist']} ({spec['mean']} mean), "
                                  f"{market['frequency']}, {market['periods']:,} periods "
                                  f"{_when(market['fitted_from'])} → "
                                  f"{_when(market['fitted_to'])}")
        for a, f in market["fitted"].items():
            d = f.get("diagnostics") or {}
            note = (f"persistence {d['unconstrained_persistence']:.4f} bounded at "
                    f"{d['max_persistence']:g}" if d.get("bounded")
                    else f"persistence {d.get('persistence', float('nan')):.4f}")
            t.add_row(f"  {a}", f"{f['nobs']:,} returns, {note}")
        for a, peg in market.get("pegged", {}).items():
            m = peg["model"]
            t.add_row(f"  {a}", "; ".join([
                f"peg {m['peg']:g} with depeg jumps: {peg['events']} events in "
                f"{peg['observations']:,} periods, intensity {m['intensity']:.3g} a period, "
                f"recovery {m['recovery']:.3g}", *peg.get("notes", [])]))
        for a, b in market.get("betas", {}).items():
            t.add_row(f"  {a}", f"beta {b['beta']:.3f} to {b['factor']} (R² {b['r2']:.2f}, "
                                f"{b['returns']:,} returns)")
        for pr in market["prices"]:
            if pr.get("missing_values") or pr.get("missing_periods"):
                t.add_row(f"  {pr['asset']} prices", f"{pr['missing_values']} empty price "
                          f"cells dropped, {pr['missing_periods']} missing periods")
    return t


def _print_run(m: dict[str, Any]) -> None:
    """The risk, failure and contagion-path tables of a run (wide enough off a terminal)."""
    con = out if out.is_terminal else Console(width=132)
    con.print(_risk_table(m))
    con.print(_failure_table(m))
    con.print(_paths_table(m))


def _chain(r: dict[str, Any]) -> str:
    """A contagion chain, root first: ``node (how) → node (how)``."""
    if "steps" not in r:  # a run saved before causes were recorded
        return " → ".join(r["path"])
    return " → ".join(f"{s['node']} ({s['how']})" for s in r["steps"])


def _paths_table(m: dict[str, Any], top: int = 10) -> Table:
    """The ``top`` most frequent contagion chains, whole (each failure after its cause)."""
    single = m["paths"] == 1
    t = Table(title="contagion paths (each node after what caused it, and how it was hit)"
              if single else "most frequent contagion paths (each node after what caused "
                             "it, and how it was hit)", show_edge=False)
    t.add_column("path")
    if not single:
        t.add_column("paths", justify="right")
        t.add_column("share", justify="right")
    for r in m["contagion_paths"][:top]:
        t.add_row(_chain(r), *([] if single else [f"{r['count']:,}",
                                                   f"{r['probability']:.2%}"]))
    return t


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help="a library scenario name or a .yaml/.json file")],
    snapshot: Annotated[Path | None, typer.Option(help="snapshot directory")] = None,
    store: Annotated[str | None, typer.Option(help="or: memory:PATH or bolt://HOST:PORT")] = None,
    paths: Annotated[int | None, typer.Option(help="Monte Carlo paths (default: scenario's)")
                     ] = None,
    seed: Annotated[int | None, typer.Option(help="seed (default: the scenario's)")] = None,
    rounds: Annotated[int, typer.Option(help="cascade rounds per path at most")] = 24,
    prices: Annotated[list[str] | None, typer.Option(
        help="ASSET=FILE price history for the market model (Monte Carlo; repeat per asset)")
    ] = None,
    history_days: Annotated[int, typer.Option(help="fit on the last N days of history")
                            ] = 1460,
    proxy_asset: Annotated[str | None, typer.Option(
        help="assets with no move of their own (no price history, no mapping; not pegged, "
             "not a stablecoin) move as this asset (replaces the scenario's proxy)")] = None,
    surface: Annotated[list[str] | None, typer.Option(
        help="UNDERLYING=FILE implied-vol surface (from `contagion surface`): options on it "
             "are marked at their own strike and expiry (repeat per underlying)")] = None,
    ray: Annotated[str | None, typer.Option(
        help="run the shards on Ray: a cluster address, or 'local'")] = None,
    shard_paths: Annotated[int, typer.Option(help="paths per seed stream / Ray task")] = 1000,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="write the run here (JSON, plus the per-path arrays as .npz beside it)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Run a stress scenario through the Monte Carlo cascade and report its risk metrics,
    after how each asset moved and what the market model fitted."""
    if (snapshot is None) == (store is None):
        raise ValueError("give exactly one of --snapshot DIR or --store URI")
    request = _request(load_scenario(scenario), store=store, snapshot_dir=snapshot,
                       paths=paths, seed=seed, rounds=rounds, prices=prices,
                       history_days=history_days, shard_paths=shard_paths, ray_address=ray,
                       proxy_asset=proxy_asset, surfaces=_surfaces(surface))
    with _progress() as p:
        run = execute_run(request, out=out_path, progress=_run_progress(p, request))
    if out_path is not None:
        console.print(f"run written to {out_path} ({run.seconds:.1f} s)")
    if as_json:
        out.print_json(json.dumps(run.metrics))
        return
    (out if out.is_terminal else Console(width=132)).print(_inputs_table(run.inputs))
    _print_run(run.metrics)


@app.command()
def surface(
    chain: Annotated[Path, typer.Option(help="option chain CSV (Deribit's export)")],
    out_path: Annotated[Path, typer.Option("--out", help="write the surface here (JSON)")],
    underlying: Annotated[str | None, typer.Option(
        help="the chain's underlying to fit (default: the chain's only one)")] = None,
    vol_index: Annotated[Path | None, typer.Option(
        help="daily vol-index closes (Deribit DVOL export) to fit the spot-vol dynamics "
             "on, with --prices")] = None,
    prices: Annotated[Path | None, typer.Option(
        help="the underlying's daily price history, with --vol-index")] = None,
    min_days: Annotated[float, typer.Option(help="leave out expiries closer than this")] = 0.0,
    weighting: Annotated[str, typer.Option(help="spread or vega")] = "spread",
) -> None:
    """Fit the arbitrage-checked SVI implied-volatility surface of an option chain (one slice
    per expiry, linear in total variance between them) and, given a vol index and prices, how
    it moves with the spot; print each slice's fit and the checks, and save it for
    `contagion simulate --surface`."""
    from simulate.market.implied_vol import deribit_chain
    from simulate.market.surface import fit_spot_vol, fit_surface, read_vol_index

    if (vol_index is None) != (prices is None):
        raise ValueError("--vol-index and --prices go together (the spot-vol dynamics are "
                         "fitted on both); without them the default response is used")
    if weighting not in ("spread", "vega"):
        raise ValueError(f"--weighting must be spread or vega (got {weighting!r})")
    try:
        raw = pd.read_csv(chain)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{chain}: not a readable CSV ({str(e).splitlines()[0]})") from None
    dynamics = None
    if vol_index is not None and prices is not None:
        asset = underlying or "BTC"
        dynamics = fit_spot_vol(read_vol_index(vol_index), read_closes(prices, asset).series)
    fitted = fit_surface(deribit_chain(raw), underlying=underlying, min_days=min_days,
                         weighting=weighting, dynamics=dynamics)  # type: ignore[arg-type]
    out_path.write_text(fitted.model_dump_json(indent=1))
    t = Table(title=f"SVI surface of {fitted.underlying} on {fitted.as_of:%Y-%m-%d %H:%M} "
                    f"(spot {fitted.spot:,.2f})", show_edge=False)
    for c in ("expiry", "days", "quotes", "RMSE (vol pts)", "a", "b", "rho", "m", "sigma"):
        t.add_column(c, justify="left" if c == "expiry" else "right")
    for sl in fitted.slices:
        t.add_row(sl.label, f"{sl.tau * 365:.1f}", str(sl.quotes), f"{sl.rmse * 100:.2f}",
                  f"{sl.a:.4g}", f"{sl.b:.4g}", f"{sl.rho:+.3f}", f"{sl.m:+.3f}", f"{sl.s:.4g}")
    out.print(t)
    if fitted.checks is not None:
        ck = fitted.checks
        out.print(f"butterfly: min g {ck.butterfly_min_g:.3g} ({ck.butterfly_at}); calendar: "
                  f"min Δw {ck.calendar_min_dw:.3g} ({ck.calendar_at}) on k ∈ [{ck.k_min:g}, "
                  f"{ck.k_max:g}]: {'pass' if ck.passed else 'FAIL'}")
    d = fitted.dynamics
    out.print(f"spot-vol: {d.source}, down {d.down:.3f}, up {d.up:.3f}"
              + (f" (R² {d.r_squared:.2f}, {d.observations} days)" if d.r_squared is not None
                 else ""))
    console.print(f"surface written to {out_path}")


@app.command()
def compare(a: Annotated[Path, typer.Argument(help="first run (JSON)")],
            b: Annotated[Path, typer.Argument(help="second run (JSON)")],
            as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
            ) -> None:
    """Compare two saved runs: metric differences with z-scores, failure changes."""
    diff = compare_runs(RunResult.load(a), RunResult.load(b))
    if as_json:
        out.print_json(json.dumps(diff))
        return
    differ = [k for k, v in diff["inputs_differ"].items() if v]
    t = Table(title=f"{b.name} - {a.name} (inputs that differ: {', '.join(differ) or 'none'})",
              show_edge=False)
    for c in ("metric", "a", "b", "b - a", "z"):
        t.add_column(c, justify="left" if c == "metric" else "right")
    for k, r in diff["metrics"].items():
        t.add_row(k, f"{r['a']:,.0f}", f"{r['b']:,.0f}", f"{r['diff']:+,.0f}",
                  "-" if r["z"] is None else f"{r['z']:+.2f}")
    out.print(t)


@app.command()
def scenarios(
    show: Annotated[str | None, typer.Option(
        help="print one scenario (a library name or a .yaml/.json file) as validated JSON")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the scenario library, or show one validated scenario."""
    if show is not None:
        out.print_json(load_scenario(show).model_dump_json())
        return
    items = list_scenarios()
    if as_json:
        out.print_json(json.dumps([{"name": s.name, "kind": s.kind,
                                    "description": s.description} for s in items]))
        return
    t = Table(title="scenarios", show_edge=False)
    for c in ("name", "kind", "description"):
        t.add_column(c)
    for sc in items:
        t.add_row(sc.name, sc.kind, sc.description)
    out.print(t)

# --------------------------------------------------------------------------- ingest

ingest_app = typer.Typer(no_args_is_help=True,
                         help="Ingest a source into a store: the chain (web3) or files.")
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("chain")
def ingest_chain_command(
    config: Annotated[Path, typer.Option(help="YAML or TOML ingest config")],
    store: StoreOpt,
    rpc: Annotated[str | None, typer.Option(
        help="JSON-RPC URL (default: 'rpc' in the config)")] = None,
    block: Annotated[str | None, typer.Option(
        help="block number or 'latest' (default: 'block' in the config)")] = None,
) -> None:
    """Read lending pools, pairs, feeds and tokens at a block into a store (incremental: the
    event scan continues from the checkpoint; re-ingesting a block changes nothing)."""
    from rich.progress import TaskID

    from ingest import ingest_chain, load_chain_config

    cfg = load_chain_config(config)
    at: int | str | None = block
    if block is not None and block != "latest":
        if not block.isdigit():
            raise ValueError(f"--block must be a block number or 'latest' (got {block!r})")
        at = int(block)
    with _progress() as p:
        tasks: dict[str, TaskID] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = {"scan": "scanning blocks", "read": "reading state"}.get(stage, stage)
                tasks[stage] = p.add_task(label, total=total)
            p.update(tasks[stage], completed=done, total=total)

        def retrying(message: str) -> None:
            p.console.print(f"retrying: {message}", highlight=False)

        res = ingest_chain(cfg, rpc_url=rpc, block=at, progress=tick, on_retry=retrying)
        with open_store(store, create=True) as s:
            summary = s.write_snapshot(res.snapshot,
                                       progress=_writer(p, f"writing to {s.uri}"))
    out.print(_summary_table(summary))
    scanned = f"blocks {res.scanned[0]}-{res.scanned[1]} scanned" if res.scanned else \
        "no new blocks to scan"
    console.print(f"block {res.block}: {res.snapshot.num_rows('positions'):,} positions of "
                  f"{res.users:,} known users; {scanned}; {res.retries} requests retried")


@ingest_app.command("files")
def ingest_files_command(
    path: Annotated[Path, typer.Argument(help="snapshot directory, directory of input files, "
                                              "or one file")],
    store: StoreOpt,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="snapshot time, ISO 8601 (UTC if no zone)")] = None,
    block: Annotated[int | None, typer.Option(help="block number to record")] = None,
) -> None:
    """Read files (tables, subgraph JSON, price history, options chain) into a store; the
    store is untouched if any file is rejected."""
    from datetime import UTC, datetime

    from ingest import ingest_files

    when = None
    if as_of is not None:
        when = datetime.fromisoformat(as_of)
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    with console.status(f"reading {path}"):
        snap = ingest_files(path, as_of=when, block=block)
    with open_store(store, create=True) as s:
        summary = _write(s, snap)
    out.print(_summary_table(summary))


# -- GraphQL API: serve, apikey -----------------------------------------------------------------

apikey_app = typer.Typer(no_args_is_help=True,
                         help="Create, list and revoke API keys (the key file keeps digests).")
app.add_typer(apikey_app, name="apikey")

KeysOpt = Annotated[Path, typer.Option(
    "--keys", envvar="CONTAGION_API_KEYS",
    help="API key file (env CONTAGION_API_KEYS; default ./api-keys.json)")]
_DEFAULT_KEYS = Path("api-keys.json")


@apikey_app.command("create")
def apikey_create(
    role: Annotated[str, typer.Option(help="viewer (queries), analyst (+ scenario mutations) "
                                           "or admin (+ key administration)")],
    name: Annotated[str, typer.Option(help="who or what the key is for")] = "default",
    keys: KeysOpt = _DEFAULT_KEYS,
) -> None:
    """Create a key and print it (on stdout, once: only its digest is stored)."""
    from api.keys import KeyStore

    key, token = KeyStore(keys).create(name, role)
    console.print(f"created API key {key.id} ({key.role}) for {key.name!r} in {keys}; "
                  "it is shown only now:")
    out.print(token, highlight=False)


@apikey_app.command("list")
def apikey_list(keys: KeysOpt = _DEFAULT_KEYS,
                as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False
                ) -> None:
    """List the keys (id, name, role, creation time)."""
    from api.keys import KeyStore

    items = KeyStore(keys).list_keys()
    if as_json:
        out.print_json(json.dumps([{"id": k.id, "name": k.name, "role": str(k.role),
                                    "created": k.created.isoformat()} for k in items]))
        return
    t = Table(title=f"API keys in {keys}", show_edge=False)
    for c in ("id", "name", "role", "created"):
        t.add_column(c)
    for k in items:
        t.add_row(k.id, k.name, str(k.role), k.created.isoformat())
    out.print(t)


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="the key's id")],
                  keys: KeysOpt = _DEFAULT_KEYS) -> None:
    """Remove a key; a running server refuses it from its next request."""
    from api.keys import KeyStore

    key = KeyStore(keys).revoke(key_id)
    console.print(f"revoked API key {key.id} ({key.role}, {key.name!r})")


@app.command()
def serve(
    store: StoreOpt,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: any free port)")] = 8000,
    keys: KeysOpt = _DEFAULT_KEYS,
    cors_origin: Annotated[list[str] | None, typer.Option(
        help="an origin browsers may call from (repeatable; none by default)")] = None,
    rate_limit: Annotated[float, typer.Option(help="requests/s per API key")] = 50.0,
    rate_burst: Annotated[int, typer.Option(help="burst size per API key")] = 100,
    store_timeout: Annotated[float, typer.Option(help="seconds one store query may take")
                             ] = 5.0,
    max_page_size: Annotated[int, typer.Option(help="cap on first/last")] = 100,
    max_cost: Annotated[int, typer.Option(help="cap on an operation's cost")] = 5000,
    runs_dir: Annotated[Path, typer.Option(
        help="where scenario runs launched through the API are kept")] = Path("contagion-runs"),
    prices: Annotated[list[str] | None, typer.Option(
        help="ASSET=FILE price history for the market model of Monte Carlo runs (repeat per "
             "asset; without any, Monte Carlo scenarios are refused)")] = None,
    history_days: Annotated[int, typer.Option(help="fit on the last N days of history")
                            ] = 1460,
    max_concurrent_runs: Annotated[int, typer.Option(
        help="scenario runs executing at once (each in a worker process)")] = 1,
    max_run_paths: Annotated[int, typer.Option(help="cap on a run's Monte Carlo paths")
                             ] = 100_000,
    workers: Annotated[int, typer.Option(
        help="server processes sharing the port (above 1: scenario runs are listed, not "
             "launched)")] = 1,
    ingest_root: Annotated[Path | None, typer.Option(
        help="directory the admin-only ingest mutation may read from (default: ingest "
             "through the API is off)")] = None,
    model_path: ModelOpt = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the GraphQL API at http://HOST:PORT/graphql (API keys required; subscriptions
    over websockets at ws://HOST:PORT/graphql)."""
    import logging

    from api.keys import KeyStore
    from api.server import bind_socket, create_app, run_server, run_workers
    from api.settings import ApiSettings

    flags = {"rate_limit": rate_limit, "rate_burst": rate_burst,
             "store_timeout_s": store_timeout, "max_page_size": max_page_size,
             "max_cost": max_cost, "cors_origins": tuple(cors_origin or ()),
             "runs_dir": runs_dir, "history_days": history_days,
             "max_concurrent_runs": max_concurrent_runs, "max_run_paths": max_run_paths,
             "ingest_root": ingest_root, "model_path": model_path, "workers": workers,
             "prices": _price_histories(prices)}
    try:
        settings = ApiSettings.model_validate(flags)
    except ValidationError as e:
        # a check of the whole names the setting first: it becomes the option
        raise _option_error(e, whole="--") from None
    key_store = KeyStore(keys)
    if not key_store.list_keys():
        raise ValueError(f"no API keys in {keys}: create one with `contagion apikey create "
                         f"--role admin --keys {keys}`")
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = bind_socket(host, port)
    if settings.workers > 1:
        def ready() -> None:
            console.print(f"serving http://{host}:{sock.getsockname()[1]}/graphql (store "
                          f"{store}, keys {keys}, {settings.workers} processes; scenario runs "
                          f"in {settings.runs_dir} are listed, not launched)", highlight=False)

        run_workers(store, keys, settings, sock, log_level=log_level, ready=ready)
        return
    with open_store(store) as s:
        app_ = create_app(s, key_store, settings)
        bound = sock.getsockname()[1]
        assets = ", ".join(h.asset for h in settings.prices)
        console.print(f"scenario runs in {settings.runs_dir} (at most "
                      f"{settings.max_concurrent_runs} at once; Monte Carlo "
                      f"{'on ' + assets if assets else 'off: no --prices'})", highlight=False)
        console.print(f"serving http://{host}:{bound}/graphql (store {s.uri}, keys {keys})",
                      highlight=False)
        run_server(app_, sock, log_level=log_level)


# --- fragility model ----------------------------------------------------------------------------


def _stage_progress(p: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = p.add_task(stage, total=total)
        p.update(tasks[stage], completed=done, total=total)

    return update


@app.command()
def train(
    config: Annotated[Path | None, typer.Option(
        "--config", help="training config (YAML or JSON; default: the default model's)")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="where to write the model")] = Path(
        "fragility.pt"),
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="dataset cache folder (default ~/.cache/contagion/gnn)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="build the dataset afresh, "
                                                              "write no cache")] = False,
    device: Annotated[str, typer.Option("--device", help="torch device")] = "cpu",
) -> None:
    """Train the fragility model on generated ecosystems labelled by the cascade simulator,
    evaluate it on held-out ones against the baselines, and write it."""
    import yaml

    from gnn.dataset import default_cache_dir
    from gnn.report import evaluation_table
    from gnn.train import TrainConfig
    from gnn.train import train as train_model

    if config is None:
        cfg = TrainConfig()
    else:
        try:
            doc = yaml.safe_load(config.read_text())
        except yaml.YAMLError as e:
            raise ValueError(f"{config}: not YAML or JSON ({e})") from None
        try:
            cfg = TrainConfig.model_validate(doc or {})
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ValueError(f"{config}: {loc}: {err['msg'].lower()}") from None
    folder = None if no_cache else (cache or default_cache_dir())
    start = time.perf_counter()
    with _progress() as p:
        model = train_model(cfg, cache_dir=folder, progress=_stage_progress(p), device=device)
    path = model.save(out_path)
    sec = model.metrics["seconds"]
    if model.metrics.get("methods"):
        Console(width=max(out.width, 130)).print(evaluation_table(model.metrics))
    out.print(f"dataset {sec['dataset']:.1f} s, fit {sec['fit']:.1f} s"
              + (f", evaluation {sec['evaluate']:.1f} s" if "evaluate" in sec else "")
              + f"; total {time.perf_counter() - start:.1f} s; model written to {path}",
              highlight=False)


@app.command()
def score(
    store: StoreOpt,
    model_path: ModelOpt = None,
    name: Annotated[str, typer.Option("--name", help="score set name (node property "
                                                     "score_<name>)")] = "fragility",
    top: Annotated[int, typer.Option("--top", min=0, help="nodes to print")] = 10,
    device: Annotated[str, typer.Option("--device", help="torch device")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Score every protocol, pool, asset and account of the store with the fragility model and
    write the scores into the store as node properties."""
    from api.fragility import score_store
    from gnn.model import load_model

    model = load_model(model_path)
    with open_store(store) as s, console.status(f"scoring {s.uri}"):
        start = time.perf_counter()
        done = score_store(s, model, name=name, model_path=model_path, device=device)
        seconds = time.perf_counter() - start
    info = done.info
    ranked = [(v, k, t) for k, t, v in done.ranked(top)]
    if as_json:
        out.print_json(json.dumps({"name": name, "model": info.model, "nodes": info.count,
                                   "seconds": seconds,
                                   "top": [{"id": k, "type": t, "score": v}
                                           for v, k, t in ranked]}))
        return
    t = Table(title=f"most fragile nodes ({info.count:,} scored in {seconds:.2f} s, written as "
                    f"score_{name})", show_edge=False)
    t.add_column("node")
    t.add_column("type")
    t.add_column("fragility", justify="right")
    for v, k, typ in ranked:
        t.add_row(k, typ, f"{v:.3f}")
    out.print(t)


@app.command()
def explain(
    node_id: Annotated[str, typer.Argument(help="id of a protocol, pool, asset or account")],
    store: StoreOpt,
    model_path: ModelOpt = None,
    top: Annotated[int, typer.Option("--top", min=1, help="neighbours and features")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Why the fragility model scores a node as it does: its top contributing neighbours and
    features."""
    from gnn.explain import explain_node
    from gnn.model import load_model

    model = load_model(model_path)
    with open_store(store) as s, console.status(f"reading {s.uri}"):
        system = s.export_arrays()
    ex = explain_node(model, system, node_id, top=top)
    if as_json:
        out.print_json(ex.model_dump_json())
        return
    out.print(ex.summary(), highlight=False)
    t = Table(title="neighbours", show_edge=False)
    for c in ("node", "type", "hops", "weight", "contribution"):
        t.add_column(c, justify="right" if c in ("hops", "weight", "contribution") else "left")
    for n in ex.neighbours:
        t.add_row(n.id, n.type, str(n.hops), f"{n.weight:.1%}", f"{n.contribution:+.3f}")
    out.print(t)
    f = Table(title="features", show_edge=False)
    for c in ("feature", "value", "attribution"):
        f.add_column(c, justify="left" if c == "feature" else "right")
    for a in ex.features:
        f.add_row(a.name, f"{a.value:.4g}", f"{a.attribution:+.3f}")
    out.print(f)


def _click_error(name: str) -> type[Exception]:
    """Click's exception class ``name`` (typer re-exports only ``BadParameter``, a usage
    error; whether click is vendored into typer depends on typer's version)."""
    return cast(type[Exception], next(
        c for c in typer.BadParameter.__mro__ if c.__name__ == name))


_USAGE_ERROR = _click_error("UsageError")
_CLICK_ERROR = _click_error("ClickException")


def _error_line(message: str, *, hint: str = "") -> Text:
    """``error: <message>`` on one line, in the style of the engine's own errors (a click
    message's capital first letter and final full stop dropped)."""
    msg = " ".join(line.strip() for line in message.splitlines() if line.strip())
    if msg[:1].isupper() and msg[1:2].islower():
        msg = msg[0].lower() + msg[1:]
    return Text("error: ", style="red") + Text(msg.removesuffix(".") + hint)


def _command_path(args: list[str]) -> str:
    """``contagion`` and the (sub)commands that ``args`` name (for an error raised before
    click knew the command, such as an option missing its value)."""
    cmd: Any = typer.main.get_command(app)
    path = ["contagion"]
    for arg in args:
        sub = getattr(cmd, "commands", {}).get(arg)
        if sub is None:
            break
        cmd = sub
        path.append(arg)
    return " ".join(path)


def _usage_error(e: Exception) -> None:
    """Print a usage error (unknown command or option, missing option, bad value) as one
    line, then exit 2."""
    code = int(getattr(e, "exit_code", 2))
    if type(e).__name__ == "NoArgsIsHelpError":  # no arguments: the help was asked for
        if cast(Any, e).format_message().strip():
            cast(Any, e).show()
        sys.exit(code)
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else _command_path(sys.argv[1:])
    console.print(_error_line(cast(Any, e).format_message(), hint=f" (see {where} --help)"),
                  highlight=False)
    sys.exit(code)


def main() -> None:
    """Entry point of the ``contagion`` console script: every failure, usage errors
    included, is one ``error: ...`` line on stderr (exit 2 for usage errors, 1 otherwise;
    130 when interrupted)."""
    try:
        code = app(prog_name="contagion", standalone_mode=False)
    except _USAGE_ERROR as e:
        _usage_error(e)
    except _CLICK_ERROR as e:  # an error click reports itself (a file it cannot open)
        console.print(_error_line(cast(Any, e).format_message()), highlight=False)
        sys.exit(int(getattr(e, "exit_code", 1)))
    except typer.Abort:
        console.print(_error_line("aborted"), highlight=False)
        sys.exit(1)
    except SnapshotValidationError as e:
        console.print(Text("error: ", style="red") + Text(str(e)), highlight=False)
        sys.exit(1)
    except (ContagionError, ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        console.print(Text("error: ", style="red") + Text(msg), highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:  # outside a command (typer turns one inside into code 130)
        code = 130
    if code == 130:
        console.print(_error_line("interrupted"), highlight=False)
    if isinstance(code, int) and code:  # --help and the commands' own exits give a code
        sys.exit(code)


if __name__ == "__main__":
    main()
