// Requests: the latest usage records, newest first, filtered by client, model and status and paged by
// the API's cursor; one request's whole record by its id (#requests/<id>).

import { h, fmt, table, cell, pill, recordsNotice } from "../dom.js";

const FILTERS = ["client", "model", "status"];

function statusPill(r) {
  const tone = r.status >= 500 || r.status === 0 ? "bad" : r.status >= 400 || r.error_code ? "warn" : "good";
  return pill(String(r.status), tone);
}

function filterForm(ctx) {
  const inputs = Object.fromEntries(FILTERS.map((f) => [f, h("input", {
    name: f, value: ctx.params.get(f) || "", size: f === "status" ? 8 : 16,
    placeholder: { client: "any client", model: "any model", status: "200, 4xx, error" }[f],
  })]));
  const lookup = h("input", { name: "id", placeholder: "request id", size: 28 });
  return h("div", { class: "toolbar" },
    h("form", {
      class: "toolbar", id: "requests-filter",
      onsubmit(event) {
        event.preventDefault();
        ctx.go("requests", Object.fromEntries(FILTERS.map((f) => [f, inputs[f].value.trim()])));
      },
    }, FILTERS.map((f) => h("label", {}, f[0].toUpperCase() + f.slice(1), inputs[f])), h("button", { type: "submit" }, "Filter")),
    h("span", { class: "spacer" }),
    h("form", {
      class: "toolbar", id: "requests-lookup",
      onsubmit(event) {
        event.preventDefault();
        if (lookup.value.trim()) location.hash = `#requests/${encodeURIComponent(lookup.value.trim())}`;
      },
    }, h("label", {}, "Find a request", lookup), h("button", { type: "submit", class: "quiet" }, "Open")),
  );
}

function row(r) {
  return h("tr", { "data-id": r.id },
    cell("ts", r.ts, fmt.time(r.ts), "nowrap"),
    cell("id", r.id, h("a", { href: `#requests/${encodeURIComponent(r.id)}`, class: "mono" }, r.id), "wrap"),
    cell("client", r.client),
    cell("model", r.model, r.model || r.model_requested || "—", "wrap"),
    cell("provider", r.provider),
    cell("status", r.status, [statusPill(r), r.cached ? [" ", pill("cached", "good")] : null]),
    cell("attempts", r.attempts, fmt.int(r.attempts), "num"),
    cell("total_tokens", r.total_tokens, fmt.int(r.total_tokens), "num"),
    cell("cost_usd", r.cost_usd, fmt.usd(r.cost_usd), "num"),
    cell("duration_ms", r.duration_ms, fmt.ms(r.duration_ms), "num"),
    cell("error_code", r.error_code, r.error_code || "", "wrap"),
  );
}

const HEADERS = [["Time"], ["Request id"], ["Client"], ["Model"], ["Provider"], ["Status"], ["Attempts", "num"],
  ["Tokens", "num"], ["Cost", "num"], ["Duration", "num"], ["Error code"]];

async function list(root, api, ctx) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, ctx.params.get(f) || ""]));
  const before = ctx.params.get("before") || "";
  const doc = await api.get("/requests", { ...filters, before, limit: 50 });
  root.append(
    h("h1", {}, "Requests"),
    recordsNotice(doc),
    filterForm(ctx),
    table(HEADERS, doc.requests.map(row), "No requests match."),
    h("div", { class: "pager" },
      h("button", { type: "button", class: "quiet", id: "newest", disabled: !before, onclick: () => ctx.go("requests", filters) }, "Newest"),
      h("button", { type: "button", class: "quiet", id: "older", disabled: !doc.next, onclick: () => ctx.go("requests", { ...filters, before: doc.next }) }, "Older"),
      h("span", {}, `${doc.requests.length} shown, newest first`),
    ),
  );
}

// a cache hit cost nothing: what it saved is what the answer cost when an upstream gave it
function cacheText(cached, r) {
  if (!cached) return "not from the cache";
  return r.saved_usd === null ? "cached (its cost unknown)" : `cached (saved ${fmt.usd(r.saved_usd)})`;
}

const DETAIL = [
  ["id", "Request id"], ["ts", "Time", fmt.time], ["client", "Client"], ["endpoint", "Endpoint"],
  ["model_requested", "Model asked for"], ["model", "Model"], ["provider", "Provider"], ["stream", "Stream"],
  ["status", "Status"], ["attempts", "Attempts"], ["error_code", "Error code"],
  ["prompt_tokens", "Prompt tokens", fmt.int], ["completion_tokens", "Completion tokens", fmt.int],
  ["total_tokens", "Total tokens", fmt.int], ["cost_usd", "Cost", fmt.usd], ["cached", "Response cache", cacheText],
  ["duration_ms", "Duration", fmt.ms], ["ttfb_ms", "Time to first byte", fmt.ms],
];

async function detail(root, api, id) {
  const r = await api.get(`/requests/${encodeURIComponent(id)}`);
  root.append(
    h("h1", {}, "Request ", h("code", {}, r.id)),
    h("dl", { class: "detail", id: "request-detail" }, DETAIL.map(([key, label, show]) => [
      h("dt", {}, label),
      h("dd", { "data-k": key, "data-v": r[key] === null || r[key] === undefined ? "" : String(r[key]) },
        r[key] === null || r[key] === undefined ? "—" : show ? show(r[key], r) : String(r[key])),
    ])),
    h("p", {}, h("a", { href: "#requests" }, "← All requests")),
  );
}

export async function render(root, api, args, ctx) {
  if (args.length && args[0]) return detail(root, api, args.join("/"));
  return list(root, api, ctx);
}
