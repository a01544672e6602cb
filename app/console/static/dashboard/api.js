// Sign-in and API calls of the dashboard and the office report. The access token lives in this tab only
// (sessionStorage): closing the tab signs out. Every call sends the chosen language.
import { html, signal, useState } from "../shared/ui.js";
import { language, t } from "../shared/i18n.js";

const KEY = "guichet.dashboard.token";
export const token = signal(sessionStorage.getItem(KEY));

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// A message with {placeholders} filled in.
export function tf(key, values = {}) {
  return t(key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export async function api(path, { method = "GET", body, accept = "application/json", blob = false } = {}) {
  const headers = { Accept: accept, "Accept-Language": language.value };
  if (token.value) headers.Authorization = `Bearer ${token.value}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) signOut();
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch { /* not a problem document */ }
    throw new ApiError(response.status, detail);
  }
  return blob ? response.blob() : response.json();
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  token.value = null;
}

async function signIn(username, password) {
  const form = new URLSearchParams({ grant_type: "password", username, password });
  const response = await fetch("/api/v1/auth/token", { method: "POST", body: form, headers: { Accept: "application/json" } });
  if (!response.ok) return false;
  const answer = await response.json();
  sessionStorage.setItem(KEY, answer.access_token);
  token.value = answer.access_token;
  return true;
}

export function SignIn() {
  const [failed, setFailed] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    setFailed(!(await signIn(data.get("username"), data.get("password"))));
  };
  return html`
    <form class="signin" onSubmit=${submit}>
      <h2>${t("signin.heading")}</h2>
      <label>${t("signin.username")} <input name="username" autocomplete="username" required /></label>
      <label>${t("signin.password")} <input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit">${t("signin.submit")}</button>
      ${failed && html`<p role="alert" class="problem">${t("signin.failed")}</p>`}
    </form>`;
}

// Saves a file the browser received (an export, a chart's image) under a name.
export function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// A table as the reader sees it (headers in their language, codes beside) as CSV or XLSX, formatted by the
// server (POST /api/v1/exports).
export async function exportTable({ title, columns, rows }, format) {
  const body = { title, columns: columns.map(({ code, label }) => ({ code, label })), rows };
  const file = await api("/api/v1/exports", { method: "POST", body, accept: format === "csv" ? "text/csv" : XLSX, blob: true });
  save(file, `${title.replace(/[^\p{L}\p{N}_-]+/gu, "-")}.${format}`);
}
