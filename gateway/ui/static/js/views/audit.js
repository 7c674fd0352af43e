// Audit: who did what to whom, when: operators' actions (suspend, resume, cooldown resets) and the
// firewall's decisions, newest first.

import { h, fmt, table, cell } from "../dom.js";

const KINDS = ["operator", "firewall"];

export async function render(root, api, args, ctx) {
  const kind = KINDS.includes(ctx.params.get("kind")) ? ctx.params.get("kind") : "operator";
  const doc = await api.get("/audit", { kind, limit: 200 });
  const select = h("select", { name: "kind", onchange: () => ctx.go("audit", { kind: select.value }) },
    KINDS.map((k) => h("option", { value: k, selected: k === kind }, k)));
  root.append(
    h("h1", {}, "Audit"),
    h("div", { class: "toolbar" }, h("label", {}, "Kind", select)),
    table([["When"], ["Who"], ["Action"], ["Client"], ["Subject"], ["Detail"]], doc.records.map((r) => h("tr", { "data-id": r.id },
      cell("ts", r.ts, fmt.time(r.ts), "nowrap"),
      cell("actor", r.actor),
      cell("action", r.action),
      cell("client", r.client, r.client || "—"),
      cell("subject", r.subject, r.subject, "wrap"),
      cell("detail", r.detail, [r.rule, r.detail].filter(Boolean).join(" · ") || "—"),
    )), "No records yet."),
  );
}
