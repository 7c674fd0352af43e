// The admin API, as the page's session (cookie) calls it: state-changing calls carry the CSRF token that
// login (or GET session) gave.

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// the gateway did not answer at all (down, restarting, the network): the page retries, the view stays
export class Unreachable extends Error {}

export class Api {
  constructor(base, onUnauthorized) {
    this.base = base;
    this.csrf = null;
    this.onUnauthorized = onUnauthorized;
  }

  url(path, params = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(key, value);
    }
    const qs = query.toString();
    return `${this.base}${path}${qs ? `?${qs}` : ""}`;
  }

  async call(method, path, { params, body, quiet401 } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && this.csrf) headers["X-CSRF-Token"] = this.csrf;
    let response;
    try {
      response = await fetch(this.url(path, params), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // fetch's own way of saying no answer came
      throw new Unreachable(error.message);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      const failure = new ApiError(response.status, error.message || `${response.status} ${response.statusText}`, error.code);
      if (response.status === 401 && !quiet401 && this.onUnauthorized) this.onUnauthorized(failure);
      throw failure;
    }
    return data;
  }

  get(path, params) {
    return this.call("GET", path, { params });
  }

  post(path, body = {}) {
    return this.call("POST", path, { body });
  }
}
