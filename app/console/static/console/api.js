// The console's only way to the server: the public /api/v1, with the signed-in person's credentials, as
// docs/sessions.md says for a browser. The access token lives in this module's memory only; the refresh
// token is the HttpOnly cookie `guichet_refresh`, which scripts never see. Every call carries the chosen
// language as Accept-Language.
import { signal } from "../shared/ui.js";
import { language } from "../shared/i18n.js";

const API = "/api/v1";
let accessToken = null;
// Renew slightly before the access token runs out, but only when a request is made: an idle clerk's
// session is left to end at the idle lifetime (docs/sessions.md).
let renewAfter = 0;

// Whether this browser holds a session cookie worth renewing at start-up (the cookie itself is HttpOnly):
// without it a first visit would send a renewal bound to fail.
const SIGNED_IN = "guichet.signed-in";

export const me = signal(null); // {id, username, full_name, role, office_code} once signed in
export const offline = signal(false); // the server could not be reached at the last attempt
export const sessionEnded = signal(false); // the sign-in ended (expired, revoked): the sign-in page shows why

// An API answer that is not 2xx: the problem+json body (RFC 9457) with its per-field errors.
export class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.type = this.body.type || "about:blank";
    this.errors = this.body.errors || [];
  }
  is(slug) {
    return this.type.endsWith(`/problems/${slug}`);
  }
}

// The server did not answer at all (down, network cut): the console says so and keeps what was typed.
export class Unreachable extends Error {}

function remember(answer) {
  accessToken = answer.access_token;
  renewAfter = Date.now() + Math.max(0, answer.expires_in - 120) * 1000;
}

async function tokenRequest(fields) {
  let response;
  try {
    response = await fetch(`${API}/auth/token`, {
      method: "POST", credentials: "same-origin",
      headers: { "Accept-Language": language.value },
      body: new URLSearchParams(fields),
    });
    offline.value = false;
  } catch (error) {
    offline.value = true;
    throw new Unreachable(String(error));
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Problem(response.status, body);
  remember(body);
  return body;
}

export async function signIn(username, password) {
  await tokenRequest({ grant_type: "password", username, password, refresh_token_delivery: "cookie" });
  sessionEnded.value = false;
  localStorage.setItem(SIGNED_IN, "1");
  me.value = await whoAmI();
}

async function whoAmI() {
  return get("/auth/me");
}

// The signed-in person's office (its place: the village picker offers its province first), asked once.
let office = null;
export function myOffice() {
  if (!me.value?.office_code) return Promise.resolve(null);
  office ??= get(`/offices/${encodeURIComponent(me.value.office_code)}`).catch(() => { office = null; return null; });
  return office;
}

// One renewal at a time across this browser's tabs: a refresh token is good for one use, and two tabs
// renewing with the same one would end the session (docs/sessions.md). The second tab to get the lock
// sends the cookie the first one received.
async function renew() {
  const run = () => tokenRequest({ grant_type: "refresh_token" });
  if (navigator.locks) return navigator.locks.request("guichet-refresh", run);
  return run();
}

// At start-up (a reload loses the access token): renew with the cookie if there is a session.
export async function resume() {
  if (!localStorage.getItem(SIGNED_IN)) return false;
  try {
    await renew();
    me.value = await whoAmI();
    return true;
  } catch (error) {
    if (error instanceof Unreachable) throw error;
    localStorage.removeItem(SIGNED_IN);
    return false;
  }
}

// Sign-out ends the session on the server (the cookie names it) and forgets everything local.
export async function signOut() {
  try {
    const response = await fetch(`${API}/auth/revoke`, { method: "POST", credentials: "same-origin" });
    await response.text(); // read to the end: an unread body is cancelled, which browsers report as a failure
  } catch {
    // The server is down: the local session ends anyway; the refresh token ends at its idle lifetime.
  }
  forget();
}

export function forget() {
  accessToken = null;
  office = null;
  renewAfter = 0;
  me.value = null;
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith("guichet.") && key !== "guichet.language") localStorage.removeItem(key);
  }
}

function endSession() {
  accessToken = null;
  localStorage.removeItem(SIGNED_IN);
  me.value = null;
  sessionEnded.value = true;
}

// A call to the API: `body` is sent as JSON; `headers` adds to the defaults. Answers the parsed JSON (or
// null for 204) and, with `full`, {body, headers}. Renews the access token once on a 401.
export async function api(method, path, { body, headers = {}, full = false } = {}) {
  if (accessToken && Date.now() > renewAfter) await renew().catch(() => {});
  const send = () => fetch(`${API}${path}`, {
    method, credentials: "same-origin",
    headers: {
      Accept: "application/json", "Accept-Language": language.value,
      ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}),
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response;
  try {
    response = await send();
    if (response.status === 401 && me.value) {
      try {
        await renew();
      } catch (error) {
        if (error instanceof Problem) endSession();
        throw error;
      }
      response = await send();
    }
    offline.value = false;
  } catch (error) {
    if (error instanceof Problem || error instanceof Unreachable) throw error;
    offline.value = true;
    throw new Unreachable(String(error));
  }
  const parsed = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) endSession();
    throw new Problem(response.status, parsed);
  }
  return full ? { body: parsed, headers: response.headers } : parsed;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, { body });

// A query string from the fields that have a value.
export function query(params) {
  const filled = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return filled.length ? `?${new URLSearchParams(filled)}` : "";
}
