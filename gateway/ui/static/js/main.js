// The operator page: log in with an admin client's secret (the admin API sets an HttpOnly session
// cookie), then one view per hash (#overview, #providers, #clients, #usage, #requests[/id], #approvals,
// #audit). The nav counts the requests waiting for an approval, asked every few seconds. When the gateway
// does not answer, a notice says so and the page asks again until it does; a session that ended (expired,
// or not known to a restarted gateway) brings the login back with the reason.

import { Api, ApiError, Unreachable } from "./api.js";
import * as overview from "./views/overview.js";
import * as providers from "./views/providers.js";
import * as clients from "./views/clients.js";
import * as usage from "./views/usage.js";
import * as requests from "./views/requests.js";
import * as audit from "./views/audit.js";
import * as approvals from "./views/approvals.js";

const VIEWS = { overview, providers, clients, usage, requests, approvals, audit };
const WAITING_MS = 5000;
const RETRY_MS = 3000;
const $ = (id) => document.getElementById(id);

// the API beside the page: /ui/ -> /admin/api (relative, so a proxy's path prefix holds)
const api = new Api(new URL("../admin/api", document.baseURI).pathname, sessionEnded);

function sessionEnded(error) {
  api.csrf = null;
  showLogin(error.code === "session_expired" ? "Session expired, log in again." : error.message);
}

let retryTimer = null;

// no answer at all: say so, and ask again (the view, or the session check before a login) until one comes
function unreachable() {
  $("offline").hidden = false;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => (api.csrf ? route() : resume()), RETRY_MS);
}

function reachable() {
  $("offline").hidden = true;
  clearTimeout(retryTimer);
}

// the nav's count of held requests (the webhook's link brings an admin to #approvals)
function waiting(n) {
  const el = $("approvals-count");
  el.textContent = String(n);
  el.hidden = !n;
}

let waitingTimer = null;

function watchWaiting(on) {
  clearInterval(waitingTimer);
  waitingTimer = on ? setInterval(countWaiting, WAITING_MS) : null;
  if (on) countWaiting();
}

async function countWaiting() {
  if (!api.csrf || document.hidden) return;
  try {
    waiting((await api.get("/approvals")).approvals.length);
  } catch (error) {
    if (error instanceof Unreachable) return unreachable();
    // a hint, asked again soon: the Approvals view shows why it failed
    if (!(error instanceof ApiError)) throw error;
    return;
  }
  if (!$("offline").hidden) route(); // the gateway is back: draw the view again
}

function showLogin(message = "") {
  watchWaiting(false);
  for (const id of ["nav", "session", "view", "banner"]) $(id).hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("secret").focus();
}

function showApp(session) {
  api.csrf = session.csrf;
  $("who").textContent = `Signed in as ${session.client}`;
  $("login").hidden = true;
  for (const id of ["nav", "session", "view"]) $(id).hidden = false;
  watchWaiting(true);
  route();
}

export function banner(error) {
  if (error instanceof Unreachable) return unreachable();
  const el = $("banner");
  const store = error && error.code === "store_unavailable" ? "Usage store unavailable: " : "";
  el.textContent = error ? `${store}${error.message}` : "";
  el.hidden = !error;
}

async function route() {
  if (!api.csrf) return;
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const [name, ...rest] = (path || "overview").split("/");
  const params = new URLSearchParams(query || "");
  const view = VIEWS[name] ? name : "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view);
  banner(null);
  const root = document.createElement("div");
  root.className = "view";
  root.dataset.view = view;
  $("view").replaceChildren(root); // attached first: charts take their width from it; a later navigation replaces it
  try {
    await VIEWS[view].render(root, api, rest.map(decodeURIComponent), { banner, refresh: route, params, go, waiting });
  } catch (error) {
    if (error instanceof Unreachable) return unreachable();
    if (!(error instanceof ApiError)) throw error;
    reachable();
    if (error.status === 401) return;
    banner(error);
  }
  reachable();
  root.dataset.ready = "1"; // drawn from the API's answers (what a test waits for)
}

// to a view with these parameters (a hash like #usage?by=model): the hash is the page's whole state
function go(name, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  const qs = query.toString();
  const hash = `#${name}${qs ? `?${qs}` : ""}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function login(event) {
  event.preventDefault();
  const secret = $("secret").value;
  try {
    const session = await api.call("POST", "/login", { body: { secret }, quiet401: true });
    $("secret").value = "";
    showApp(session);
  } catch (error) {
    if (error instanceof Unreachable) return showLogin("The gateway did not answer; try again.");
    if (!(error instanceof ApiError)) throw error;
    showLogin(error.status === 403 ? "That client is not an admin (admin: true in the config)." : error.message);
  }
}

async function logout() {
  watchWaiting(false);
  await api.post("/logout").catch(() => null);
  api.csrf = null;
  showLogin();
}

// who is logged in: {"client": null} when nobody (a 200, so a fresh page logs no error)
async function resume() {
  try {
    const session = await api.call("GET", "/session", { quiet401: true });
    reachable();
    if (session.client) showApp(session);
    else showLogin();
  } catch (error) {
    if (error instanceof Unreachable) return unreachable();
    if (!(error instanceof ApiError)) throw error;
    reachable();
    showLogin();
  }
}

function start() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  resume();
}

start();
