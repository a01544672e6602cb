// Sign-in: the password grant with the refresh token delivered as an HttpOnly cookie (docs/sessions.md).
import { html, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { Problem, Unreachable, signIn } from "./api.js";

export function SignIn({ ended }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    setBusy(true);
    setError(null);
    try {
      await signIn(form.get("username").trim(), form.get("password"));
    } catch (problem) {
      if (problem instanceof Unreachable) setError(t("offline"));
      else if (problem instanceof Problem && problem.status === 429) setError(t("signin.wait"));
      else setError(t("signin.failed"));
    } finally {
      setBusy(false);
    }
  }
  return html`
    <form class="signin card" onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title" tabindex="-1">${t("signin.title")}</h1>
      ${ended && html`<p class="notice" role="status">${t("signin.ended")}</p>`}
      <label>${t("signin.username")}<input name="username" autocomplete="username" required data-autofocus /></label>
      <label>${t("signin.password")}<input name="password" type="password" autocomplete="current-password" required /></label>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${t("signin.submit")}</button>
    </form>`;
}
