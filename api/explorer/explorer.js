// The contagion explorer: the dependency graph (protocols, pools, assets, oracles; positions
// aggregated away) coloured by fragility, node details with explanations and contagion paths,
// and scenario runs with live progress. It talks only to the GraphQL API of the server that
// serves it: queries over HTTP, scenario progress over a graphql-transport-ws websocket.
"use strict";

const explorer = (() => {
  const TYPE_COLOURS = { Protocol: "#1f3b73", Pool: "#4c78a8", Asset: "#72b7b2",
                         Oracle: "#b279a2" };
  const state = { key: null, cy: null, graph: null, scores: new Map() };
  const $ = (id) => document.getElementById(id);

  function esc(v) {
    return String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                   '"': "&quot;", "'": "&#39;" })[c]);
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") {
      return Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 0 })
                                 : String(Math.round(v * 10000) / 10000);
    }
    return String(v);
  }
  function setStatus(text, error) {
    const s = $("status");
    s.textContent = text;
    s.className = error ? "error" : "";
  }

  async function gql(query, variables) {
    const r = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${state.key}` },
      body: JSON.stringify({ query, variables: variables || {} }),
    });
    let body;
    try { body = await r.json(); } catch (e) { throw new Error(`HTTP ${r.status}`); }
    if (body.errors && body.errors.length) {
      const e = new Error(body.errors.map((x) => x.message).join("; "));
      e.status = r.status;
      throw e;
    }
    return body.data;
  }

  // -- fragility colours: green (safe) to red (fragile)
  function scoreColour(s) {
    const t = Math.max(0, Math.min(1, s));
    const hue = 120 * (1 - t);
    return `hsl(${hue}, 70%, 42%)`;
  }

  async function loadScores() {
    try {
      // the graph shows protocols, pools and assets: the top 100 of each (the page cap)
      const d = await gql(`{ p: fragility(top: 100, nodeType: PROTOCOL) { nodeId score }
        l: fragility(top: 100, nodeType: POOL) { nodeId score }
        a: fragility(top: 100, nodeType: ASSET) { nodeId score } }`);
      state.scores = new Map([...d.p, ...d.l, ...d.a].map((f) => [f.nodeId, f.score]));
    } catch (e) {
      state.scores = new Map(); // no model scores in this store yet: colour by type
    }
  }

  async function loadGraph() {
    const d = await gql(`{ systemGraph {
      nodes { __typename id ... on Protocol { name } ... on Asset { symbol } }
      relationships { source type target } } }`);
    state.graph = d.systemGraph;
    await loadScores();
    const elements = [];
    for (const n of state.graph.nodes) {
      const score = state.scores.get(n.id);
      elements.push({ data: {
        id: n.id, type: n.__typename, label: n.name || n.symbol || n.id,
        colour: score === undefined ? TYPE_COLOURS[n.__typename] : scoreColour(score),
        size: n.__typename === "Protocol" ? 34 : 20 } });
    }
    state.graph.relationships.forEach((r, i) => elements.push({ data: {
      id: `e${i}`, source: r.source, target: r.target, type: r.type } }));
    state.cy = cytoscape({
      container: $("graph"), elements, wheelSensitivity: 0.2,
      style: [
        { selector: "node", style: { "background-color": "data(colour)", label: "data(label)",
          width: "data(size)", height: "data(size)", "font-size": 9, color: "#333",
          "text-valign": "bottom", "text-margin-y": 2, "border-width": 1,
          "border-color": "#333" } },
        { selector: "edge", style: { width: 1, "line-color": "#bbb", "curve-style": "bezier",
          "target-arrow-shape": "triangle", "target-arrow-color": "#bbb",
          "arrow-scale": 0.6 } },
        { selector: "node:selected", style: { "border-width": 4, "border-color": "#f58518" } },
      ],
      layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: 9000,
                idealEdgeLength: 60 },
    });
    state.cy.on("tap", "node", (ev) => showNode(ev.target.id()));
    $("graph").dataset.nodes = String(state.graph.nodes.length);
    legend();
    setStatus(`${state.graph.nodes.length} nodes, ${state.graph.relationships.length} ` +
              `relationships${state.scores.size ? ", coloured by fragility" : ""}`);
  }

  function legend() {
    const l = $("legend");
    if (state.scores.size) {
      l.innerHTML = [0, 0.25, 0.5, 0.75, 1].map((s) =>
        `<span><i class="swatch" style="background:${scoreColour(s)}"></i>${s}</span>`)
        .join("") + " fragility score";
    } else {
      l.innerHTML = Object.entries(TYPE_COLOURS).map(([t, c]) =>
        `<span><i class="swatch" style="background:${c}"></i>${t}</span>`).join("");
    }
  }

  // each type's enum-valued `kind` needs its own alias in one selection
  const DETAILS = `query($id: ID!) { node(id: $id) { __typename id
    ... on Protocol { name protocolKind: kind reserveUsd closeFactor pools { id }
                      issuedAssets { id } }
    ... on Pool { poolKind: kind fee protocol { id }
      collateral { asset { id } ltv liquidationThreshold liquidationBonus }
      lends { asset { id } supplied borrowed } }
    ... on Asset { symbol assetKind: kind price marketDepthUsd issuer { id } peggedTo { id } }
    ... on Oracle { oracleKind: kind reads { id } } } }`;

  function rows(obj) {
    return Object.entries(obj).filter(([k]) => k !== "__typename" && k !== "id")
      .map(([k, v]) => {
        let shown;
        if (Array.isArray(v)) {
          shown = v.map((x) => esc(x.id || (x.asset && x.asset.id) || JSON.stringify(x)))
            .join(", ") || "–";
          if (v.length && v[0].asset) {
            shown = v.map((x) => esc(Object.entries(x).map(([a, b]) =>
              `${a}: ${b && b.id ? b.id : fmt(b)}`).join(" "))).join("<br>");
          }
        } else if (v && typeof v === "object") {
          shown = esc(v.id);
        } else {
          shown = esc(fmt(v));
        }
        return `<tr><th>${esc(k)}</th><td>${shown}</td></tr>`;
      }).join("");
  }

  // the protocols that depend on `id` (walk relationships backwards from it)
  function dependents(id) {
    const into = new Map();
    for (const r of state.graph.relationships) {
      if (!into.has(r.target)) into.set(r.target, []);
      into.get(r.target).push(r.source);
    }
    const types = new Map(state.graph.nodes.map((n) => [n.id, n.__typename]));
    const seen = new Set([id]);
    const queue = [id];
    const found = [];
    while (queue.length) {
      const u = queue.shift();
      for (const v of into.get(u) || []) {
        if (seen.has(v)) continue;
        seen.add(v);
        queue.push(v);
        if (types.get(v) === "Protocol") found.push(v);
      }
    }
    return found.slice(0, 5);
  }

  async function showNode(id) {
    const panel = $("details");
    panel.innerHTML = `<h2>${esc(id)}</h2><p class="hint">loading…</p>`;
    try {
      const d = await gql(DETAILS, { id });
      const n = d.node;
      let html = `<h2 id="details-title">${esc(n.id)} <small>(${esc(n.__typename)})</small>` +
                 `</h2><table id="details-table">${rows(n)}</table>`;
      html += await explanation(id);
      html += await paths(id);
      panel.innerHTML = html;
      panel.dataset.node = id;
    } catch (e) {
      panel.innerHTML = `<p class="error">${esc(e.message)}</p>`;
    }
  }

  async function explanation(id) {
    if (!state.scores.has(id)) return "";
    try {
      const d = await gql(`query($id: ID!) { explain(nodeId: $id, top: 5) { score method
        neighbours { nodeId nodeType hops weight } features { name value attribution } } }`,
        { id });
      const x = d.explain;
      return `<h2 id="fragility-title">Fragility ${fmt(x.score)}</h2>` +
        `<table id="explanation"><tr><th>feature</th><th>value</th><th>attribution</th></tr>` +
        x.features.map((f) => `<tr><td>${esc(f.name)}</td><td class="num">${fmt(f.value)}` +
          `</td><td class="num">${f.attribution.toFixed(3)}</td></tr>`).join("") +
        `<tr><th>neighbour</th><th>hops</th><th>share</th></tr>` +
        x.neighbours.map((n) => `<tr><td>${esc(n.nodeId)} <small>(${esc(n.nodeType)})</small>` +
          `</td><td class="num">${n.hops}</td><td class="num">${Math.round(n.weight * 100)}%` +
          `</td></tr>`).join("") + `</table><p class="hint">${esc(x.method)}</p>`;
    } catch (e) {
      return `<p class="error">explanation: ${esc(e.message)}</p>`;
    }
  }

  async function paths(id) {
    const targets = dependents(id);
    if (!targets.length) return "<h2>Contagion paths</h2><p class=hint>No protocol depends " +
                                "on this node.</p>";
    const parts = targets.map((t, i) =>
      `p${i}: contagionPaths(from: $from, to: "${t.replace(/"/g, "")}", maxHops: 4, limit: 3) ` +
      `{ hops nodeIds relationships }`);
    const d = await gql(`query($from: ID!) { ${parts.join(" ")} }`, { from: id });
    let html = "<h2>Contagion paths</h2><div id=\"paths\">";
    targets.forEach((t, i) => {
      for (const p of d[`p${i}`]) {
        html += `<div class="path">${p.nodeIds.map((n, k) => esc(n) +
          (k < p.relationships.length ? ` <small>←${esc(p.relationships[k])}–</small> ` : ""))
          .join("")}</div>`;
      }
    });
    return html + "</div>";
  }

  // -- scenarios
  async function loadScenarios() {
    const d = await gql("{ scenarios { name kind description } }");
    const sel = $("scenario-select");
    sel.innerHTML = d.scenarios.map((s) =>
      `<option value="${esc(s.name)}" data-kind="${esc(s.kind)}" title="${esc(s.description)}">` +
      `${esc(s.name)} (${esc(s.kind.toLowerCase())})</option>`).join("");
    sel.addEventListener("change", pathsApply);
    pathsApply();
  }

  // only Monte Carlo scenarios have a number of paths (the others are one path)
  function pathsApply() {
    const opt = $("scenario-select").selectedOptions[0];
    $("scenario-paths").disabled = !opt || opt.dataset.kind !== "monte-carlo";
  }

  function showProgress(p, status) {
    $("scenario-progress").hidden = false;
    $("progress-bar").value = p;
    $("progress-text").textContent = `${Math.round(p * 100)}% ${status.toLowerCase()}`;
  }

  async function runScenario(ev) {
    ev.preventDefault();
    const name = $("scenario-select").value;
    const input = { scenario: { library: name } };
    if (!$("scenario-paths").disabled) input.paths = parseInt($("scenario-paths").value, 10);
    $("scenario-result").innerHTML = "";
    const d = await gql(`mutation($input: RunScenarioInput!) { runScenario(input: $input) {
      __typename ... on ScenarioQueued { run { id status progress } }
      ... on InvalidScenario { errors { field message } } } }`,
      { input });
    const r = d.runScenario;
    if (r.__typename !== "ScenarioQueued") {
      $("scenario-result").innerHTML = r.errors.map((e) =>
        `<p class="error">${esc(e.field || "input")}: ${esc(e.message)}</p>`).join("");
      return;
    }
    showProgress(r.run.progress, r.run.status);
    watch(r.run.id);
  }

  // graphql-transport-ws: connection_init (with the key), subscribe, next..., complete
  function watch(runId) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/graphql`, "graphql-transport-ws");
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init",
                                               payload: { authorization: `Bearer ${state.key}` } }));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "connection_ack") {
        ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: {
          query: `subscription($id: ID!) { scenarioProgress(id: $id) { status progress } }`,
          variables: { id: runId } } }));
      } else if (msg.type === "next") {
        if (msg.payload.errors) {
          $("scenario-result").innerHTML = `<p class="error">${esc(msg.payload.errors[0].message)}</p>`;
          return;
        }
        const p = msg.payload.data.scenarioProgress;
        showProgress(p.progress, p.status);
      } else if (msg.type === "complete" || msg.type === "error") {
        ws.close();
        showResult(runId);
      }
    };
  }

  async function showResult(runId) {
    const d = await gql(`query($id: ID!) { scenarioRun(id: $id) { id status error
      metrics { paths badDebt { tail { level var cvar } } } } }`, { id: runId });
    const run = d.scenarioRun;
    if (run.status !== "SUCCEEDED") {
      $("scenario-result").innerHTML = `<p class="error">run ${esc(run.id)}: ` +
        `${esc(run.status.toLowerCase())} ${esc(run.error || "")}</p>`;
      return;
    }
    $("scenario-result").innerHTML = `<p>run ${esc(run.id)}: ${run.metrics.paths} paths</p>` +
      `<table id="run-metrics"><tr><th>level</th>` +
      `<th>bad-debt VaR</th><th>CVaR</th></tr>` + run.metrics.badDebt.tail.map((r) =>
        `<tr><td>${Math.round(r.level * 100)}%</td><td class="num">$${fmt(r.var)}</td>` +
        `<td class="num">$${fmt(r.cvar)}</td></tr>`).join("") + "</table>";
  }

  async function connect(key) {
    state.key = key;
    try {
      await gql("{ me { id role } }");
    } catch (e) {
      setStatus(`cannot connect: ${e.message}`, true);
      $("key-form").hidden = false;
      return;
    }
    sessionStorage.setItem("contagion-key", key);
    $("key-form").hidden = true;
    await loadGraph();
    await loadScenarios();
  }

  function start() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
    if (fromHash) history.replaceState(null, "", location.pathname); // keep it out of history
    const key = fromHash || sessionStorage.getItem("contagion-key");
    $("key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      connect($("key-input").value.trim());
    });
    $("scenario-form").addEventListener("submit", (ev) => runScenario(ev).catch((e) => {
      $("scenario-result").innerHTML = `<p class="error">${esc(e.message)}</p>`;
    }));
    if (key) connect(key).catch((e) => setStatus(e.message, true));
    else { setStatus("enter an API key"); $("key-form").hidden = false; }
  }

  document.addEventListener("DOMContentLoaded", start);
  return { state, showNode };
})();
window.explorer = explorer;
