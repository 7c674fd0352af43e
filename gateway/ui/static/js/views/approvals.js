// Approvals: the requests the firewall holds until an admin decides (an `ask` rule), oldest first, asked
// for again every few seconds while the view is open. Each row decides once: allow once, allow this client
// this item for N seconds, allow always (until the config changes), or deny. A row decided here, by another
// admin or through the API, or whose client left, disappears.

import { ApiError, Unreachable } from "../api.js";
import { h, fmt, cell } from "../dom.js";

const REFRESH_MS = 2000;
const DEFAULT_SECONDS = 3600;
const MAX_SECONDS = 365 * 86400; // the API's bound: longer is allow always

const DONE = {
  allow_once: "allowed once",
  allow_for: "allowed for a while",
  allow_always: "allowed until the config changes",
  deny: "denied",
};

function decideButtons(decide) {
  const seconds = h("input", {
    type: "number", name: "seconds", min: 1, max: MAX_SECONDS, step: 1, value: DEFAULT_SECONDS, required: true,
    class: "seconds", "aria-label": "seconds to allow for",
  });
  const button = (decision, label, cls, extra) => h("button", {
    type: "button", class: cls, "data-decision": decision,
    onclick: (event) => decide(event.target.closest("tr"), decision, extra && extra()),
  }, label);
  return h("div", { class: "decide" },
    button("allow_once", "Allow once"),
    h("span", { class: "allow-for" },
      button("allow_for", "Allow for", "quiet", () => seconds), seconds, h("span", { class: "unit" }, "s")),
    button("allow_always", "Allow always", "quiet"),
    button("deny", "Deny", "danger"),
  );
}

const CLOCK = { hour: "2-digit", minute: "2-digit", second: "2-digit" };

// how long it has waited, and since when (the day too when it is not today's)
function waited(approval) {
  const since = new Date(approval.since * 1000);
  const clock = since.toDateString() === new Date().toDateString() ? since.toLocaleTimeString(undefined, CLOCK) : fmt.time(approval.since);
  return [h("strong", {}, fmt.duration(Math.max(0, Date.now() / 1000 - approval.since))), h("span", { class: "muted" }, `since ${clock}`)];
}

function row(approval, decide) {
  return h("tr", { "data-id": approval.id },
    cell("since", approval.since, waited(approval), "waited"),
    cell("client", approval.client, h("strong", {}, approval.client)),
    cell("what", approval.what, h("code", {}, approval.what), "wrap"),
    cell("rule", approval.rule, h("code", {}, approval.rule), "wrap"),
    h("td", {}, decideButtons(decide)),
  );
}

// The body's rows made equal to ``approvals`` (oldest first): rows of those gone are removed, new ones added,
// those still waiting kept as they are (with what an admin typed in them) but for how long they waited.
function reconcile(tbody, approvals, decide) {
  const wanted = new Set(approvals.map((a) => a.id));
  for (const tr of [...tbody.rows]) if (!wanted.has(tr.dataset.id)) tr.remove();
  const shown = new Map([...tbody.rows].map((tr) => [tr.dataset.id, tr]));
  for (const approval of approvals) {
    const tr = shown.get(approval.id) || row(approval, decide);
    tr.querySelector('[data-k="since"]').replaceChildren(...waited(approval));
    tbody.append(tr); // in the API's order
  }
}

export async function render(root, api, args, ctx) {
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", id: "approvals-empty" }, "Nothing is waiting for a decision.");
  const note = h("p", { class: "note", id: "approvals-note", role: "status" });
  const stale = h("p", { class: "error", id: "approvals-error", role: "alert", hidden: true });
  const decided = new Set(); // ids decided here: an answer asked for before the decision must not bring them back
  const tableWrap = h("div", { class: "table-wrap" }, empty, h("table", {},
    h("thead", {}, h("tr", {}, ["Waiting", "Client", "What", "Rule", "Decision"].map((t) => h("th", {}, t)))),
    tbody));

  function show(all) {
    const approvals = all.filter((a) => !decided.has(a.id));
    reconcile(tbody, approvals, decide);
    empty.hidden = approvals.length > 0;
    tbody.parentElement.hidden = approvals.length === 0;
    ctx.waiting(approvals.length);
  }

  async function refresh() {
    try {
      const doc = await api.get("/approvals");
      if (root.isConnected) show(doc.approvals);
      stale.hidden = true;
    } catch (error) {
      if (!(error instanceof ApiError || error instanceof Unreachable)) throw error;
      if (error.status === 401) return; // the login form is shown
      stale.textContent = `Could not refresh the list: ${error.message}`;
      stale.hidden = false;
    }
  }

  async function decide(tr, decision, secondsInput) {
    if (secondsInput && !secondsInput.reportValidity()) return;
    const buttons = tr.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    const body = secondsInput ? { decision, seconds: Number(secondsInput.value) } : { decision };
    const who = `${tr.querySelector('[data-k="client"]').dataset.v} → ${tr.querySelector('[data-k="what"]').dataset.v}`;
    try {
      await api.post(`/approvals/${encodeURIComponent(tr.dataset.id)}`, body);
      note.textContent = `${who}: ${DONE[decision]}.`;
    } catch (error) {
      if (error.status !== 404) {
        for (const b of buttons) b.disabled = false;
        ctx.banner(error);
        return;
      }
      note.textContent = `${who}: decided already, or the client left.`;
    }
    decided.add(tr.dataset.id);
    tr.remove();
    await refresh();
  }

  root.append(
    h("h1", {}, "Approvals"),
    h("p", { class: "intro" }, `Requests held by a firewall rule with action ask, until an admin decides or the ask timeout ends them. Refreshed every ${REFRESH_MS / 1000} s.`),
    note,
    stale,
    tableWrap,
  );
  show((await api.get("/approvals")).approvals);
  live(root, refresh);
}

// asks again every few seconds until the view is left (its root detached)
function live(root, refresh) {
  let busy = false;
  const timer = setInterval(async () => {
    if (!root.isConnected) {
      clearInterval(timer);
      return;
    }
    if (busy || document.hidden) return;
    busy = true;
    try {
      await refresh();
    } finally {
      busy = false;
    }
  }, REFRESH_MS);
}
