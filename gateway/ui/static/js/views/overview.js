// Overview: status, version, uptime; requests per minute and error rate over the last hour and day;
// latency percentiles; today's tokens and cost; streams in flight; the response cache's hit ratio and size
// and the firewall's decisions (the metrics, summed over every worker).

import { h, card, fmt, table, cell, pill, recordsNotice } from "../dom.js";
import { timeChart } from "../charts.js";

const RANGES = [
  ["1h", "Last hour", 60],
  ["24h", "Last 24 hours", 15 * 60],
];

function perMinute(series, bucket) {
  return series.map((b) => b.requests / (bucket / 60));
}

function errorRate(series) {
  return series.map((b) => (b.requests ? (100 * b.errors) / b.requests : 0));
}

function chartPanel(key, label, doc, bucket) {
  const el = h("div", { class: "chart", id: `chart-${key}` });
  const panel = h("div", { class: "panel" }, h("h2", {}, `${label}: requests per minute and error rate`), el);
  return [panel, () => timeChart(el, doc.series.map((b) => b.t), [
    { label: "requests/min", values: perMinute(doc.series, bucket) },
    { label: "error rate", values: errorRate(doc.series), unit: " %", axis: 1 },
  ])];
}

function latencyTable(docs) {
  const row = (label, key, get, show) => h("tr", {}, h("th", {}, label), docs.map(([range, doc]) => cell(`${range}.${key}`, get(doc), show(get(doc)), "num")));
  return table([["", ""], ...RANGES.map(([, label]) => [label, "num"])], [
    row("Requests", "requests", (d) => d.requests, fmt.int),
    row("Errors", "errors", (d) => d.errors, fmt.int),
    row("Error rate", "error_rate", (d) => d.error_rate, fmt.pct),
    row("Duration p50", "duration_p50", (d) => d.duration_ms.p50, fmt.ms),
    row("Duration p95", "duration_p95", (d) => d.duration_ms.p95, fmt.ms),
    row("Time to first byte p50", "ttfb_p50", (d) => d.ttfb_ms.p50, fmt.ms),
    row("Time to first byte p95", "ttfb_p95", (d) => d.ttfb_ms.p95, fmt.ms),
  ]);
}

function cacheCards(cache) {
  if (!cache) return [card("Response cache", "off", "cache", { note: "no strategy has cache: true (or metrics are off)" })];
  return [
    card("Cache hit ratio", fmt.pct(cache.hit_ratio), "cache.hit_ratio",
      { raw: cache.hit_ratio, note: `${fmt.int(cache.hits)} ${cache.hits === 1 ? "hit" : "hits"} of ${fmt.int(cache.lookups)} lookups` }),
    card("Cache size", fmt.bytes(cache.bytes), "cache.bytes",
      { raw: cache.bytes, note: cache.bytes === null ? "kept in Redis" : `${fmt.int(cache.bytes)} bytes` }),
  ];
}

function firewallCard(firewall) {
  if (!firewall) return card("Firewall decisions", "—", "firewall.total", { note: "metrics are off" });
  const actions = Object.entries(firewall.by_action).map(([action, n]) => `${action} ${fmt.int(n)}`).join(", ");
  return card("Firewall decisions", fmt.int(firewall.total), "firewall.total", { raw: firewall.total, note: actions || "none yet" });
}

export async function render(root, api) {
  const docs = await Promise.all(RANGES.map(([range]) => api.get("/overview", { range }).then((doc) => [range, doc])));
  const now = docs[0][1];
  const today = now.today;
  root.append(
    h("h1", {}, "Overview"),
    recordsNotice(now),
    h("div", { class: "cards" },
      card("Status", pill(now.status, now.status === "ok" ? "good" : "bad"), "status"),
      card("Version", now.version, "version"),
      card("Uptime", fmt.duration(now.uptime_s), "uptime"),
      card("Streams in flight", fmt.int(now.streams_in_flight), "streams_in_flight"),
      card("Processes", fmt.int(now.workers), "workers"),
    ),
    h("h2", {}, "Today"),
    h("div", { class: "cards" },
      card("Requests", fmt.int(today.requests), "today.requests"),
      card("Prompt tokens", fmt.int(today.prompt_tokens), "today.prompt_tokens"),
      card("Completion tokens", fmt.int(today.completion_tokens), "today.completion_tokens"),
      card("Total tokens", fmt.int(today.total_tokens), "today.total_tokens"),
      card("Cost", fmt.usd(today.cost_usd), "today.cost_usd"),
    ),
    h("h2", {}, "Response cache and firewall, since the gateway started"),
    h("div", { class: "cards" }, cacheCards(now.cache), firewallCard(now.firewall)),
  );
  const charts = docs.map(([range, doc], i) => chartPanel(range, RANGES[i][1], doc, RANGES[i][2]));
  root.append(
    h("h2", {}, "Traffic"),
    h("div", { class: "panels" }, charts.map(([panel]) => panel)),
    h("h2", {}, "Latency and errors"),
    latencyTable(docs),
  );
  for (const [, draw] of charts) draw();
}
