// Audit: who decided what about whom, and when, newest first: operators' actions (suspend, resume, cooldown
// resets) and the firewall's decisions (a rule's, an admin's on a held request, a timeout's, a secret found),
// all kinds or one.

import { h, fmt, table, cell, pill } from "../dom.js";

const KINDS = ["all", "firewall", "operator"];

function held(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? fmt.ms(ms) : fmt.duration(ms / 1000);
}

function actionPill(r) {
  if (r.kind !== "firewall") return r.action;
  const tone = /deny|block|timeout/.test(r.action) ? "bad" : /allow|grant/.test(r.action) ? "good" : "warn";
  return pill(r.action, tone);
}

function row(r) {
  return h("tr", { "data-id": r.id, "data-kind": r.kind },
    cell("ts", r.ts, fmt.time(r.ts), "nowrap"),
    cell("kind", r.kind),
    cell("actor", r.actor),
    cell("action", r.action, actionPill(r)),
    cell("client", r.client, r.client || "—"),
    cell("subject", r.subject, h("code", {}, r.subject), "wrap"),
    cell("rule", r.rule, r.rule ? h("code", {}, r.rule) : "—", "wrap"),
    cell("held_ms", r.held_ms, held(r.held_ms), "num"),
    cell("detail", r.detail, r.detail || "—", "wrap"),
  );
}

const HEADERS = [["When"], ["Kind"], ["Who decided"], ["Action"], ["Client"], ["What"], ["Rule"], ["Held for", "num"], ["Detail"]];

export async function render(root, api, args, ctx) {
  const kind = KINDS.includes(ctx.params.get("kind")) ? ctx.params.get("kind") : "all";
  const doc = await api.get("/audit", { kind: kind === "all" ? "" : kind, limit: 200 });
  const select = h("select", { name: "kind", onchange: () => ctx.go("audit", { kind: select.value === "all" ? "" : select.value }) },
    KINDS.map((k) => h("option", { value: k, selected: k === kind }, k)));
  root.append(
    h("h1", {}, "Audit"),
    h("div", { class: "toolbar" }, h("label", {}, "Kind", select)),
    table(HEADERS, doc.records.map(row), "No records yet."),
  );
}
