// The work queue: my follow-ups due today or overdue, overdue referrals, grievances near their deadline,
// applications waiting for a supervisor's decision, appeals. Each line opens the household it concerns.
import { html, useEffect, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { get, me, query } from "./api.js";
import { ErrorNote, date, term } from "./common.js";

const today = () => new Date().toISOString().slice(0, 10);
const soon = () => new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
const OPEN_GRIEVANCE = ["received", "in_review", "escalated"];

function List({ title, items, render, testid }) {
  return html`
    <section aria-labelledby=${`${testid}-title`} data-testid=${testid}>
      <h2 id=${`${testid}-title`}>${title} (${items.length})</h2>
      ${items.length ? html`<ul>${items.map((item) => html`<li key=${item.id}>${render(item)}</li>`)}</ul>`
        : html`<p class="hint">${t("queue.nothing")}</p>`}
    </section>`;
}

export function Queue() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const supervisor = ["supervisor", "admin"].includes(me.value.role);
  useEffect(() => {
    Promise.all([
      get(`/follow-ups${query({ due_before: today(), assigned_to: "me", limit: 100 })}`),
      get(`/referrals${query({ overdue: true, limit: 100 })}`),
      get(`/grievances${query({ limit: 100 })}`),
      supervisor ? get(`/applications${query({ status: "submitted", limit: 100 })}`) : Promise.resolve({ items: [] }),
    ]).then(([followUps, referrals, grievances, applications]) => setData({
      followUps: followUps.items,
      referrals: referrals.items,
      grievances: grievances.items.filter((g) => g.category !== "appeal" && OPEN_GRIEVANCE.includes(g.status) && g.sla_due_date <= soon()),
      appeals: grievances.items.filter((g) => g.category === "appeal" && OPEN_GRIEVANCE.includes(g.status)),
      applications: applications.items.filter((a) => a.route === "office"),
    }), setError);
  }, []);
  const caseLink = (caseId, text) => (caseId ? html`<a href=${`#/case/${caseId}`}>${text}</a>` : text);
  return html`
    <section>
      <h1 tabindex="-1">${t("queue.title")}</h1>
      <${ErrorNote} error=${error} />
      ${data && html`
        <${List} title=${t("queue.follow_ups")} items=${data.followUps} testid="queue-follow-ups"
          render=${(f) => html`${caseLink(f.case_id, f.action)} — ${date(f.due_date)}${f.overdue ? html` <span class="badge">${t("overdue")}</span>` : ""}`} />
        <${List} title=${t("queue.referrals")} items=${data.referrals} testid="queue-referrals"
          render=${(r) => html`<a href=${`#/household/${r.household_id}`}>${r.reference}</a> ${r.agency_name || r.agency} — ${date(r.due_date)}`} />
        <${List} title=${t("queue.grievances")} items=${data.grievances} testid="queue-grievances"
          render=${(g) => html`${caseLink(g.case_id, g.reference)} ${term("category", g.category)} — ${t("grievance.answer_by")} ${date(g.sla_due_date)}`} />
        ${supervisor && html`<${List} title=${t("queue.decisions")} items=${data.applications} testid="queue-decisions"
          render=${(a) => html`<a href=${`#/household/${a.household_id}`}>${a.reference}</a> ${a.scheme_name} — ${t("application.due")} ${date(a.decision_due_date)}`} />`}
        <${List} title=${t("queue.appeals")} items=${data.appeals} testid="queue-appeals"
          render=${(g) => html`${caseLink(g.case_id, g.reference)} ${g.application_reference || ""} — ${t("grievance.answer_by")} ${date(g.sla_due_date)}`} />`}
    </section>`;
}

// #/case/<id>: a case opens its household's page.
export function CaseRedirect({ id }) {
  const [error, setError] = useState(null);
  useEffect(() => { get(`/cases/${id}`).then((c) => { location.replace(`#/household/${c.household_id}`); }, setError); }, [id]);
  return html`<h1 tabindex="-1">${t("case.title")}</h1><${ErrorNote} error=${error} />`;
}
