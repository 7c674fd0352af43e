// Building the page from data without ever parsing it as HTML: every value goes in as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

const WHEN = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };

export const fmt = {
  int: (n) => (n === null || n === undefined ? "—" : integer.format(n)),
  ms: (n) => (n === null || n === undefined ? "—" : `${decimal.format(n)} ms`),
  usd: (n) => (n === null || n === undefined ? "unpriced" : `$${Number(n).toFixed(n !== 0 && Math.abs(n) < 0.01 ? 6 : 4)}`),
  pct: (n) => (n === null || n === undefined ? "—" : `${(n * 100).toFixed(2)} %`),
  bytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    const i = Math.min(units.length - 1, n > 0 ? Math.floor(Math.log2(n) / 10) : 0);
    return i ? `${decimal.format(n / 1024 ** i)} ${units[i]}` : `${integer.format(n)} B`;
  },
  time: (t) => (t === null || t === undefined ? "—" : new Date(t * 1000).toLocaleString(undefined, WHEN)),
  duration(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), mm = Math.floor((s % 3600) / 60);
    return d ? `${d} d ${hh} h` : hh ? `${hh} h ${mm} min` : mm ? `${mm} min ${s % 60} s` : `${s} s`;
  },
};

// A table cell that shows ``text`` and keeps the raw value (data-v) under its field's name (data-k): what
// a reader sees is formatted, what a script or test compares is exact.
export function cell(key, value, text = value, cls) {
  const raw = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  return h("td", { "data-k": key, "data-v": raw, class: cls }, text ?? "—");
}

export function table(headers, rows, emptyText = "Nothing yet.") {
  if (!rows.length) return h("div", { class: "table-wrap" }, h("p", { class: "empty" }, emptyText));
  const head = h("tr", {}, headers.map(([label, cls]) => h("th", { class: cls }, label)));
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows)));
}

// ``raw``: the exact number behind the shown value (data-v), ``note``: a line under it
export function card(label, value, key, { raw, note } = {}) {
  const exact = raw === null ? "" : raw === undefined ? undefined : String(raw);
  return h("div", { class: "card", "data-card": key, "data-v": exact },
    h("div", { class: "label" }, label), h("div", { class: "value" }, value), note ? h("div", { class: "note" }, note) : null);
}

export function pill(text, tone) {
  return h("span", { class: `pill ${tone || ""}` }, text);
}

// a view that reads the usage records, when they are off: says so, instead of showing zeros as if nothing happened
export function recordsNotice(doc) {
  // never null: element.append() would write "null" on the page
  if (doc.records !== false) return document.createTextNode("");
  return h("p", { class: "notice", id: "records-off" },
    "Usage records are off (usage.path: null in the config): requests, tokens and costs are not recorded, so this view cannot show them.");
}

// a view whose actions work without the usage store, when it is down: its numbers are missing, not zero
export function storeNotice(doc, ctx) {
  if (doc.store_error) ctx.banner(new Error(`Usage store unavailable: ${doc.store_error} Its numbers are not shown; the actions still work.`));
}
