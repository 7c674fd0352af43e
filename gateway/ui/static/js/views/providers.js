// Providers: every provider's model discovery (reachable, or why not) and targets (reachable, breaker,
// last error, latency) with a cooldown reset, the MCP servers, and the pools (each target's requests
// served, from the metrics, and its breaker).

import { h, fmt, table, cell, pill, recordsNotice, storeNotice } from "../dom.js";

function reachable(value) {
  if (value === null || value === undefined) return pill("unknown");
  return value ? pill("reachable", "good") : pill("unreachable", "bad");
}

function breaker(state) {
  const tone = { closed: "good", open: "bad", probing: "warn" }[state.state];
  const until = state.state === "open" && state.open_until ? ` until ${fmt.time(state.open_until)}` : "";
  return pill(`${state.state}${until}`, tone);
}

function resetButton(api, target, ctx) {
  const path = `/targets/${target.id.split("/").map(encodeURIComponent).join("/")}/reset`;
  return h("button", {
    type: "button", class: "quiet", "data-action": "reset", "data-target": target.id,
    async onclick(event) {
      event.target.disabled = true;
      try {
        await api.post(path);
        await ctx.refresh();
      } catch (error) {
        event.target.disabled = false;
        ctx.banner(error);
      }
    },
  }, "Reset cooldown");
}

function targetRow(api, target, ctx) {
  return h("tr", { "data-target": target.id },
    cell("id", target.id, h("code", {}, target.id), "wrap"),
    cell("reachable", target.reachable, reachable(target.reachable)),
    cell("discovered_at", target.discovered_at, fmt.time(target.discovered_at), "nowrap"),
    cell("breaker", target.breaker.state, breaker(target.breaker)),
    cell("last_error", target.last_error, target.last_error || "—", "wrap"),
    cell("latency_p50", target.latency_ms.p50, fmt.ms(target.latency_ms.p50), "num"),
    h("td", {}, resetButton(api, target, ctx)),
  );
}

const TARGET_HEADERS = [["Target"], ["Reachable"], ["Last discovery"], ["Breaker"], ["Last error"], ["Latency p50", "num"], [""]];

function pools(api, doc, ctx) {
  if (!doc.pools || !doc.pools.length) return [];
  return [h("h2", {}, "Pools"), ...doc.pools.flatMap((pool) => [
    h("h3", { "data-pool": pool.id }, h("code", {}, pool.id), " ", pill(pool.balance.replaceAll("_", " "))),
    table([["Target"], ["Weight", "num"], ["Requests served", "num"], ["Breaker"], [""]], pool.targets.map((t) => h("tr", { "data-pool-target": `${pool.id} ${t.id}` },
      cell("id", t.id, h("code", {}, t.id), "wrap"),
      cell("weight", t.weight, t.weight === null ? "—" : String(t.weight), "num"),
      cell("requests", t.requests, fmt.int(t.requests), "num"),
      cell("breaker", t.breaker.state, breaker(t.breaker)),
      h("td", {}, t.breaker.state === "closed" ? null : resetButton(api, t, ctx)),
    ))),
  ])];
}

// how the provider's model discovery went (as /health says): the reason a provider shows no models
function discovery(provider) {
  if (provider.reachable === null || provider.reachable === undefined) return document.createTextNode(""); // a configured list (never null: append() would write "null")
  const when = provider.discovered_at ? `models last discovered ${fmt.time(provider.discovered_at)}` : "models never discovered";
  return h("div", { class: "provider-state", "data-provider-state": provider.name },
    reachable(provider.reachable), h("span", {}, when),
    provider.error ? h("span", { class: "error", "data-k": "error" }, provider.error) : null);
}

export async function render(root, api, args, ctx) {
  const doc = await api.get("/providers");
  storeNotice(doc, ctx);
  root.append(h("h1", {}, "Providers"), recordsNotice(doc));
  for (const provider of doc.providers) {
    root.append(
      h("h2", { "data-provider": provider.name }, `${provider.name} `, pill(provider.type)),
      discovery(provider),
      table(TARGET_HEADERS, provider.targets.map((t) => targetRow(api, t, ctx)), "No targets (no models configured or discovered)."),
    );
  }
  root.append(h("h2", {}, "MCP servers"), table([["Server"], ["Transport"], ["State"], ["Last error"]],
    (doc.mcp_servers || []).map((s) => h("tr", { "data-mcp": s.name },
      cell("name", s.name), cell("transport", s.transport),
      cell("state", s.state, pill(s.state, s.state === "up" || s.state === "ready" ? "good" : "warn")),
      cell("last_error", s.last_error, s.last_error || "—"))),
    "No MCP servers configured."), ...pools(api, doc, ctx));
}
