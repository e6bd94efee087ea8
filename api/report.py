"""The run report: one self-contained HTML file (plots embedded, no network access needed to
read it) and the same plots as PNG files beside it.

Contents, from a Monte Carlo :class:`~simulate.cascade.run.RunResult` (and optionally a
fixed-shock stress run, a fragility ranking and the dependency graph):

- the bad-debt loss distribution over paths with VaR and CVaR marked at each level;
- liquidated value by cascade round (mean, and the 5–95% band over paths);
- stressed prices through the cascade rounds, as fan charts (5–95% and 25–75% bands and the
  median of the price relative to the snapshot) for the assets that fell furthest;
- the fragility ranking (score per node, with the reason from its explanation);
- the protocol / pool / asset dependency graph coloured by fragility.

Every figure in the HTML tables is read from the run's metrics, so the report and
``contagion simulate`` print the same numbers.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.figure import Figure

from graph.store.base import Subgraph
from simulate.cascade.metrics import LEVELS
from simulate.cascade.run import RunResult

__all__ = ["FAN_QUANTILES", "FragileNode", "Report", "fan_quantiles", "write_report"]

#: quantiles of the fan charts: outer band, inner band, median
FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_FAN_ASSETS = 4
_RANKED = 20
_LABEL_COLOURS = {"Protocol": "#1f3b73", "Pool": "#4c78a8", "Asset": "#72b7b2",
                  "Oracle": "#b279a2"}


@dataclass(frozen=True)
class FragileNode:
    """One row of the fragility ranking."""

    node_id: str
    node_type: str
    score: float  # in [0, 1]
    reason: str = ""


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    images: dict[str, Path]


def fan_quantiles(price_rel: np.ndarray, asset: int) -> np.ndarray:
    """The fan chart of asset ``asset``: ``[len(FAN_QUANTILES), rounds + 1]`` quantiles over
    paths of ``price_rel[:, :, asset]``."""
    return np.quantile(price_rel[:, :, asset].astype(np.float64), FAN_QUANTILES, axis=0)


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _png(fig: Figure, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def _loss_plot(run: RunResult) -> Figure:
    bad = run.paths.bad_debt_pool.sum(axis=1)
    dist = run.metrics["bad_debt_usd"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    positive = bad[bad > 0]
    if len(positive):  # losses span decades: logarithmic bins over the paths with a loss
        lo, hi = positive.min(), positive.max()
        bins = np.geomspace(lo, hi * 1.0001, 50) if hi > lo * 1.01 else [lo * 0.9, hi * 1.1]
        ax.hist(positive, bins=list(bins), color="#4c78a8", alpha=0.85)
        ax.set_xscale("log")
    ax.set_xlabel("bad debt per path (USD, paths with bad debt)")
    ax.set_ylabel("paths")
    styles = {0.95: ("#f58518", "--"), 0.99: ("#e45756", "-")}
    for level in LEVELS:
        r = dist[f"{level:g}"]
        colour, dash = styles.get(level, ("black", ":"))
        for key, style, width in (("var", dash, 1.4), ("cvar", ":", 1.8)):
            label = f"{'VaR' if key == 'var' else 'CVaR'} {level:.0%} {_usd(r[key])}"
            if r[key] > 0 and len(positive):
                ax.axvline(r[key], color=colour, linestyle=style, linewidth=width, label=label)
            else:  # a zero loss has no place on the logarithmic axis: legend only
                ax.plot([], [], color=colour, linestyle=style, label=label)
    share = dist["p_positive"]
    ax.set_title(f"Bad-debt distribution ({run.metrics['paths']:,} paths; "
                 f"{share:.1%} with bad debt)")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _rounds_plot(run: RunResult) -> Figure:
    liq = run.paths.liquidated_usd / 1e6
    rounds = np.arange(1, liq.shape[1] + 1)
    last = int(np.max(np.flatnonzero(liq.max(axis=0) > 0), initial=0)) + 2
    last = min(max(last, 3), liq.shape[1])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    lo, hi = np.quantile(liq, [0.05, 0.95], axis=0)
    ax.fill_between(rounds[:last], lo[:last], hi[:last], color="#4c78a8", alpha=0.25,
                    label="5–95% of paths")
    ax.bar(rounds[:last], liq.mean(axis=0)[:last], color="#4c78a8", width=0.6, label="mean")
    ax.set_xlabel("cascade round")
    ax.set_ylabel("collateral liquidated (USD millions)")
    ax.set_title("Liquidated value by round")
    ax.legend(fontsize=8)
    return fig


def _fan_assets(run: RunResult) -> list[int]:
    """The assets whose price fell furthest by the end of the cascade in the worst 5% of
    paths."""
    final = np.quantile(run.paths.price_rel[:, -1, :], FAN_QUANTILES[0], axis=0)
    order = np.argsort(final, kind="stable")
    return [int(a) for a in order[:_FAN_ASSETS] if final[a] < 1.0] or [int(order[0])]


def _fan_plot(run: RunResult, symbols: Mapping[str, str]) -> Figure:
    assets = _fan_assets(run)
    fig, axes = plt.subplots(1, len(assets), figsize=(3.2 * len(assets), 3.4), squeeze=False,
                             sharey=True)
    ids = run.ids["asset"]
    for ax, a in zip(axes[0], assets, strict=True):
        q = fan_quantiles(run.paths.price_rel, a)
        x = np.arange(q.shape[1])
        ax.fill_between(x, q[0], q[4], color="#e45756", alpha=0.18, label="5–95%")
        ax.fill_between(x, q[1], q[3], color="#e45756", alpha=0.35, label="25–75%")
        ax.plot(x, q[2], color="#9d1c1c", linewidth=1.5, label="median")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_title(symbols.get(str(ids[a]), str(ids[a])), fontsize=10)
        ax.set_xlabel("round")
    axes[0][0].set_ylabel("price / snapshot price")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Stressed prices through the cascade", fontsize=11)
    return fig


def _ranking_plot(ranking: Sequence[FragileNode]) -> Figure:
    rows = list(ranking[:_RANKED])[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
    cmap = matplotlib.colormaps["RdYlGn_r"]
    ax.barh([f"{r.node_id} ({r.node_type})" for r in rows], [r.score for r in rows],
            color=[cmap(r.score) for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("fragility score")
    ax.set_title("Most fragile nodes")
    ax.tick_params(axis="y", labelsize=8)
    return fig


def _graph_plot(graph: Subgraph, scores: Mapping[str, float]) -> Figure:
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((s, d) for s, _, d in graph.relationships)
    pos = nx.kamada_kawai_layout(g) if 1 < len(g) <= 400 else nx.spring_layout(g, seed=0)
    fig, ax = plt.subplots(figsize=(10, 8))
    cmap = matplotlib.colormaps["RdYlGn_r"]
    nodes = list(g.nodes)
    colours = [cmap(scores[n]) if n in scores else _LABEL_COLOURS.get(graph.nodes[n], "grey")
               for n in nodes]
    sizes = [260 if graph.nodes[n] == "Protocol" else 90 for n in nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.25, arrowsize=6, width=0.6)
    nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=colours, node_size=sizes, ax=ax,
                           edgecolors="black", linewidths=0.4)
    protocols = {n: n for n in nodes if graph.nodes[n] == "Protocol"}
    nx.draw_networkx_labels(g, pos, labels=protocols, font_size=7, ax=ax)
    sm = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 1))
    fig.colorbar(sm, ax=ax, shrink=0.6, label="fragility score")
    ax.set_title("Dependency graph (protocols, pools, assets, oracles) by fragility")
    ax.axis("off")
    return fig


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _risk_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key, name in (("bad_debt_usd", "bad debt"), ("liquidated_usd", "liquidated value")):
        d = metrics[key]
        for level in LEVELS:
            r = d[f"{level:g}"]
            rows.append([name, f"{level:.0%}", _usd(r["var"]), _usd(r["var_se"]),
                         _usd(r["cvar"]), _usd(r["cvar_se"])])
    return rows


def _run_section(title: str, run: RunResult) -> str:
    m = run.metrics
    spec = run.spec
    fp = m["failure_probability"]
    protocols = sorted(fp["protocol"].items(), key=lambda kv: -kv[1]["p"])[:10]
    paths = m["contagion_paths"][:10]
    return (
        f"<h2>{html.escape(title)}</h2>"
        f"<p>scenario <b>{html.escape(spec.scenario.name)}</b> ({spec.scenario.kind}), "
        f"{spec.paths:,} paths, seed {spec.seed}, {spec.params.rounds} rounds at most; "
        f"mean bad debt {_usd(m['bad_debt_usd']['mean'])} "
        f"(s.e. {_usd(m['bad_debt_usd']['mean_se'])}); code {html.escape(run.code_version)}; "
        f"{run.seconds:.1f} s</p>"
        + _table(["loss", "level", "VaR", "VaR s.e.", "CVaR", "CVaR s.e."], _risk_rows(m))
        + "<h3>Protocol failure probabilities</h3>"
        + _table(["protocol", "P(failure)", "s.e.", "mean bad debt"],
                 [[k, f"{v['p']:.2%}", f"{v['se']:.2%}",
                   _usd(m["bad_debt_by_protocol_usd"].get(k, 0.0))] for k, v in protocols])
        + "<h3>Most frequent contagion paths</h3>"
        + (_table(["path", "paths", "probability"],
                  [[" → ".join(p["path"]), f"{p['count']:,}", f"{p['probability']:.2%}"]
                   for p in paths]) if paths else "<p>No node failed on any path.</p>")
    )


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border-bottom:1px solid #ddd;
padding:.25em .7em;text-align:right}td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:.5em 0 1.5em}h1{margin-bottom:.2em}
.meta{color:#666}"""


def write_report(out_dir: str | Path, run: RunResult, *, stress: RunResult | None = None,
                 ranking: Sequence[FragileNode] = (), graph: Subgraph | None = None,
                 asset_symbols: Mapping[str, str] | None = None,
                 title: str = "Contagion report") -> Report:
    """Write ``report.html`` and the PNGs into ``out_dir``; ``run`` is the Monte Carlo run,
    ``stress`` an optional fixed-shock run, ``ranking`` the fragility ranking (most fragile
    first), ``graph`` the dependency graph to colour by the ranking's scores."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    symbols = dict(asset_symbols or {})
    figures: list[tuple[str, str, Figure]] = [
        ("loss_distribution", "Bad-debt loss distribution", _loss_plot(run)),
        ("liquidations_by_round", "Liquidated value by round", _rounds_plot(run)),
        ("price_fan", "Stressed prices", _fan_plot(run, symbols)),
    ]
    if ranking:
        figures.append(("fragility_ranking", "Fragility ranking", _ranking_plot(ranking)))
    if graph is not None and graph.nodes:
        scores = {r.node_id: r.score for r in ranking}
        figures.append(("dependency_graph", "Dependency graph", _graph_plot(graph, scores)))
    images: dict[str, Path] = {}
    embedded: dict[str, str] = {}
    for name, alt, fig in figures:
        path = out / f"{name}.png"
        data = _png(fig, path)
        images[name] = path
        embedded[name] = (f'<img alt="{html.escape(alt)}" '
                          f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')
    snap = run.snapshot
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class=meta>snapshot {html.escape(str(snap.get('name', '?')))}, as of "
        f"{html.escape(str(snap.get('as_of', '?')))}; run created {html.escape(run.created)}"
        "</p>",
        _run_section("Monte Carlo run", run),
        embedded["loss_distribution"], embedded["liquidations_by_round"], embedded["price_fan"],
    ]
    if stress is not None:
        parts.append(_run_section("Stress scenario", stress))
    if ranking:
        parts.append("<h2>Fragility</h2>")
        parts.append(_table(["node", "type", "score", "why"],
                            [[r.node_id, r.node_type, f"{r.score:.3f}", r.reason]
                             for r in ranking[:_RANKED]]))
        parts.append(embedded["fragility_ranking"])
    if "dependency_graph" in embedded:
        parts.append("<h2>Dependency graph</h2>")
        parts.append(embedded["dependency_graph"])
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
           f"</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    page = out / "report.html"
    tmp = out / "report.html.tmp"
    tmp.write_text(doc, "utf-8")
    tmp.replace(page)
    return Report(page, images)
