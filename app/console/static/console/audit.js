// The office's audit trail (supervisors: their office; admins: every office), newest first, with filters.
import { html, useEffect, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { get, query } from "./api.js";
import { ErrorNote } from "./common.js";

export function Audit() {
  const [filters, setFilters] = useState({ actor_username: "", entity_type: "", action: "" });
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const timer = setTimeout(() => get(`/audit${query({ ...filters, limit: 50 })}`).then(setPage, setError), 200);
    return () => clearTimeout(timer);
  }, [filters]);
  const set = (key) => (e) => setFilters({ ...filters, [key]: e.target.value.trim() });
  return html`
    <section>
      <h1 tabindex="-1">${t("audit.title")}</h1>
      <div class="grid2">
        <label>${t("audit.actor")}<input onInput=${set("actor_username")} /></label>
        <label>${t("audit.entity")}<input onInput=${set("entity_type")} /></label>
        <label>${t("audit.action")}<input onInput=${set("action")} /></label>
      </div>
      <${ErrorNote} error=${error} />
      ${page && html`
        <table data-testid="audit">
          <thead><tr><th>${t("audit.at")}</th><th>${t("audit.actor")}</th><th>${t("audit.action")}</th><th>${t("audit.entity")}</th></tr></thead>
          <tbody>${page.items.map((e) => html`<tr key=${e.id}>
            <td>${new Date(e.at).toLocaleString()}</td><td>${e.actor_username || "—"} ${e.actor_role ? `(${e.actor_role})` : ""}</td>
            <td>${e.action}</td><td>${e.entity_type} ${e.entity_id ? e.entity_id.slice(0, 8) : ""}</td></tr>`)}</tbody>
        </table>`}
    </section>`;
}
