// Drives Debian's Chromium through playwright-core against a running contagion server:
// loads /explore with an API key, waits for the dependency graph, clicks a node on the
// canvas, checks the details panel, launches a scenario and waits for its progress to reach
// 100% (when SCENARIO is given). Screenshots go to OUT.
// Usage: node explorer.mjs URL KEY OUT NODE_ID [SCENARIO]
// Exit status 0 when every check holds; otherwise the failed check is printed.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, key, out, nodeId, scenario] = process.argv.slice(2);
if (!nodeId) {
  console.error("usage: node explorer.mjs URL KEY OUT NODE_ID [SCENARIO]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
try {
  await page.goto(`${url}/explore#key=${encodeURIComponent(key)}`);
  await page.waitForSelector("#graph[data-nodes]", { timeout: 30000 });
  const shown = Number(await page.getAttribute("#graph", "data-nodes"));
  check(shown > 0, `the graph shows ${shown} nodes`);
  check(!page.url().includes("key="), "the API key is dropped from the address bar");
  // wait for the layout to settle, then click the node where cytoscape drew it
  await page.waitForFunction(() => window.explorer.state.cy &&
                                   window.explorer.state.cy.nodes().length > 0);
  const box = await page.locator("#graph").boundingBox();
  const pos = await page.evaluate((id) => window.explorer.state.cy.getElementById(id)
                                            .renderedPosition(), nodeId);
  check(pos && Number.isFinite(pos.x), `node ${nodeId} is drawn`);
  await page.screenshot({ path: `${out}/explorer-graph.png` });
  await page.mouse.click(box.x + pos.x, box.y + pos.y);
  await page.waitForSelector("#details-title", { timeout: 15000 });
  const title = await page.textContent("#details-title");
  check(title.includes(nodeId), `the details panel shows ${nodeId} (${title.trim()})`);
  const table = await page.textContent("#details-table");
  check(table.length > 0, "the details panel lists the node's fields");
  const fragility = await page.textContent("#fragility-title");
  check(fragility.startsWith("Fragility 0."), `the details panel explains the score (${fragility})`);
  const features = await page.locator("#explanation tr").count();
  check(features >= 5, `the explanation lists features and neighbours (${features} rows)`);
  check(await page.evaluate(() => window.explorer.state.scores.size) > 0,
        "the graph is coloured by fragility");
  const paths = await page.locator("#paths .path").count();
  check(paths > 0, `the details panel lists ${paths} contagion paths`);
  await page.screenshot({ path: `${out}/explorer-details.png` });
  check(consoleErrors.length === 0, `no errors in the page (${consoleErrors.join(" | ")})`);
  if (scenario) await runScenario();
} catch (e) {
  failed = true;
  console.error(String(e.stack || e));
  console.error(`page errors: ${consoleErrors.join(" | ")}`);
  await page.screenshot({ path: `${out}/explorer-failure.png` }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

// launch a scenario and watch its progress over the websocket
async function runScenario() {
  await page.selectOption("#scenario-select", scenario);
  if (await page.isEnabled("#scenario-paths")) await page.fill("#scenario-paths", "200");
  await page.click("#scenario-run");
  await page.waitForFunction(() => document.getElementById("progress-text")
    .textContent.startsWith("100%"), null, { timeout: 120000 });
  check(true, `scenario ${scenario}: progress reached 100%`);
  await page.waitForSelector("#run-metrics", { timeout: 30000 });
  const metrics = await page.textContent("#run-metrics");
  check(metrics.includes("99%"), "the run's VaR/CVaR table is shown");
  await page.screenshot({ path: `${out}/explorer-scenario.png` });
  check(consoleErrors.length === 0, `no errors in the page (${consoleErrors.join(" | ")})`);
}
