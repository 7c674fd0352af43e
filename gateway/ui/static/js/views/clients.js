// Clients: who may call the gateway, what they used today and this month, their rate limits' use, and
// suspend / resume (never a secret: the API has none to give).

import { h, fmt, table, cell, pill, recordsNotice, storeNotice } from "../dom.js";

// u null: not known (records off, or the store down), shown as such rather than as zero or "unpriced"
function usageCells(prefix, u) {
  if (!u) return ["requests", "total_tokens", "cost_usd"].map((k) => cell(`${prefix}.${k}`, null, "—", "num"));
  return [
    cell(`${prefix}.requests`, u.requests, fmt.int(u.requests), "num"),
    cell(`${prefix}.total_tokens`, u.total_tokens, fmt.int(u.total_tokens), "num"),
    cell(`${prefix}.cost_usd`, u.cost_usd, fmt.usd(u.cost_usd), "num"),
  ];
}

function limitBar(limit) {
  const label = `${limit.name.replaceAll("_", " ")}: ${fmt.int(limit.used)} / ${fmt.int(limit.limit)}`;
  return h("div", { class: "limit", "data-limit": limit.name, "data-used": limit.used, "data-max": limit.limit },
    h("span", { class: "name" }, label),
    h("meter", { min: 0, max: limit.limit, value: Math.min(limit.used, limit.limit), low: limit.limit * 0.7, high: limit.limit * 0.9, optimum: 0, title: label }),
  );
}

function actionButton(api, client, ctx) {
  const action = client.suspended ? "resume" : "suspend";
  return h("button", {
    type: "button", class: client.suspended ? "quiet" : "danger", "data-action": action, "data-client": client.name,
    async onclick(event) {
      event.target.disabled = true;
      try {
        await api.post(`/clients/${encodeURIComponent(client.name)}/${action}`);
        await ctx.refresh();
      } catch (error) {
        event.target.disabled = false;
        ctx.banner(error);
      }
    },
  }, action === "suspend" ? "Suspend" : "Resume");
}

function state(client) {
  if (!client.enabled) return pill("disabled");
  return client.suspended ? pill("suspended", "bad") : pill("active", "good");
}

export async function render(root, api, args, ctx) {
  const doc = await api.get("/clients");
  const rows = doc.clients.map((c) => h("tr", { "data-client": c.name },
    cell("name", c.name, h("strong", {}, c.name)),
    cell("strategy", c.strategy),
    cell("suspended", c.suspended, state(c)),
    ...usageCells("today", c.today),
    ...usageCells("month", c.month),
    h("td", { "data-k": "limits" }, c.limits.length ? c.limits.map(limitBar) : "none"),
    h("td", {}, actionButton(api, c, ctx)),
  ));
  storeNotice(doc, ctx);
  root.append(h("h1", {}, "Clients"), recordsNotice(doc), table([
    ["Client"], ["Strategy"], ["State"],
    ["Requests today", "num"], ["Tokens today", "num"], ["Cost today", "num"],
    ["Requests this month", "num"], ["Tokens this month", "num"], ["Cost this month", "num"],
    ["Rate limits (current use)"], [""],
  ], rows, "No clients configured."));
}
