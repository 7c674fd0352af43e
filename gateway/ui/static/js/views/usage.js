// Usage: the usage records summed by client, model, provider, day or MCP tool over a chosen range, as a
// chart and a table; the CSV export is the API's own. Days are UTC days, as the usage records' day rows
// (and `localrouter usage --by day`) count them, whatever the browser's time zone.

import { h, fmt, table, cell, recordsNotice } from "../dom.js";
import { barChart, timeChart } from "../charts.js";

const GROUPS = ["client", "model", "provider", "day", "tool"];
const DAY = 86400;

function isoDay(t) {
  return new Date(t * 1000).toISOString().slice(0, 10); // the UTC day
}

function fromDay(value, end) {
  const [y, m, d] = value.split("-").map(Number);
  return Date.UTC(y, m - 1, d + (end ? 1 : 0)) / 1000; // UTC midnight; an end day counts whole
}

function form(ctx, by, sinceDay, untilDay) {
  const select = h("select", { name: "by" }, GROUPS.map((g) => h("option", { value: g, selected: g === by }, g)));
  const since = h("input", { type: "date", name: "since", value: sinceDay, required: true });
  const until = h("input", { type: "date", name: "until", value: untilDay, required: true });
  return h("form", {
    class: "toolbar", id: "usage-form",
    onsubmit(event) {
      event.preventDefault();
      ctx.go("usage", { by: select.value, since: since.value, until: until.value });
    },
  },
  h("label", {}, "Group by", select), h("label", {}, "From (UTC day)", since), h("label", {}, "To (UTC day, inclusive)", until),
  h("button", { type: "submit" }, "Show"));
}

function chart(el, by, rows) {
  if (by === "day") {
    return timeChart(el, rows.map((r) => fromDay(r.day, false)), [
      { label: "total tokens", values: rows.map((r) => r.total_tokens) },
      { label: "requests", values: rows.map((r) => r.requests), axis: 1 },
    ]);
  }
  return barChart(el, rows.map((r) => String(r[by] ?? "—")), [{ label: "total tokens", values: rows.map((r) => r.total_tokens) }], by);
}

const COLUMNS = [
  ["requests", "Requests", fmt.int], ["prompt_tokens", "Prompt tokens", fmt.int],
  ["completion_tokens", "Completion tokens", fmt.int], ["total_tokens", "Total tokens", fmt.int],
  ["cost_usd", "Cost", fmt.usd], ["unpriced_requests", "Unpriced requests", fmt.int], ["errors", "Errors", fmt.int],
  ["cached_requests", "From the cache", fmt.int], ["saved_usd", "Saved by the cache", (n) => (n === null ? "—" : fmt.usd(n))],
];

export async function render(root, api, args, ctx) {
  const now = Date.now() / 1000;
  const by = GROUPS.includes(ctx.params.get("by")) ? ctx.params.get("by") : "client";
  const sinceDay = ctx.params.get("since") || isoDay(now - 29 * DAY);
  const untilDay = ctx.params.get("until") || isoDay(now);
  const range = { by, since: fromDay(sinceDay, false), until: fromDay(untilDay, true) };
  const doc = await api.get("/usage", range);
  const csv = api.url("/usage", { ...range, format: "csv" });
  const el = h("div", { class: "chart", id: "chart-usage" });
  root.append(
    h("h1", {}, "Usage"),
    recordsNotice(doc),
    form(ctx, by, sinceDay, untilDay),
    h("div", { class: "panel" }, h("h2", {}, `Tokens by ${by}`), el),
    h("h2", {}, `By ${by}, ${sinceDay} to ${untilDay} (UTC) `, h("a", { href: csv, download: `usage-by-${by}.csv`, id: "usage-csv", class: "button quiet" }, "Export CSV")),
    table([[by], ...COLUMNS.map(([, label]) => [label, "num"])], doc.rows.map((r) => h("tr", { "data-key": r[by] === null ? "" : String(r[by]) },
      cell(by, r[by], String(r[by] ?? "—"), "wrap"),
      COLUMNS.map(([key, , show]) => cell(key, r[key], show(r[key]), "num")),
    )), "No usage in this range."),
  );
  if (doc.rows.length) chart(el, by, doc.rows);
  else el.append(h("p", { class: "empty" }, "No usage in this range."));
}
