// A household's cases and what is inside each: applications (with the supervisor's decision and the
// client's appeal), referrals, follow-ups, grievances and the timeline, with the forms that add them and
// links to their printables.
import { html, signal, useEffect, useState } from "../shared/ui.js";
import { has, t } from "../shared/i18n.js";
import { api, get, me, query } from "./api.js";
import { ErrorNote, date, term } from "./common.js";

const casesVersion = signal(0);
export const casesChanged = () => { casesVersion.value += 1; };

const idempotent = () => ({ "Idempotency-Key": crypto.randomUUID() });
const isoDay = (offset = 0) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
const isSupervisor = () => ["supervisor", "admin"].includes(me.value?.role);

// The household's open case (the one the clerk is serving), opened now if there is none.
export async function openCaseFor(household) {
  const open = await get(`/cases${query({ household_id: household.id, status: "open", limit: 1 })}`);
  if (open.items.length) return open.items[0].id;
  const created = await api("POST", "/cases", { body: { household_id: household.id }, headers: idempotent() });
  return created.id;
}

function useSubmit(action, done) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action(new FormData(event.target));
      casesChanged();
      done();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  }
  return { submit, error, busy };
}

function FormButtons({ busy, done, label }) {
  return html`<div class="actions">
    <button type="submit" class="primary" disabled=${busy}>${label}</button>
    <button type="button" onClick=${done}>${t("household.cancel")}</button></div>`;
}

export function ReferralForm({ household, personId, caseId, done }) {
  const [agencies, setAgencies] = useState([]);
  const [agency, setAgency] = useState("");
  useEffect(() => { get("/referral-agencies").then((list) => { setAgencies(list); setAgency(list[0]?.code || ""); }); }, []);
  const { submit, error, busy } = useSubmit(async (form) => {
    const target = caseId || await openCaseFor(household);
    await api("POST", `/cases/${target}/referrals`, {
      body: { agency: form.get("agency"), service: form.get("service") || undefined, reason: form.get("reason"),
        due_date: form.get("due_date"), person_id: personId || undefined },
      headers: idempotent(),
    });
  }, done);
  const services = Object.entries(agencies.find((a) => a.code === agency)?.services || {});
  return html`
    <form class="card" onSubmit=${submit} onKeyDown=${(e) => e.key === "Escape" && done()} data-testid="referral-form">
      <label>${t("referral.agency")}
        <select name="agency" value=${agency} onChange=${(e) => setAgency(e.target.value)}>
          ${agencies.map((a) => html`<option value=${a.code} key=${a.code}>${a.name}</option>`)}</select></label>
      ${services.length > 0 && html`<label>${t("referral.service")}
        <select name="service"><option value="">—</option>${services.map(([code, name]) => html`<option value=${code} key=${code}>${name}</option>`)}</select></label>`}
      <label>${t("referral.reason")}<input name="reason" required /></label>
      <label>${t("referral.due_date")}<input name="due_date" type="date" required value=${isoDay(14)} /></label>
      <${ErrorNote} error=${error} />
      <${FormButtons} busy=${busy || !agencies.length} done=${done} label=${t("referral.issue")} />
    </form>`;
}

function FollowUpForm({ caseId, done }) {
  const { submit, error, busy } = useSubmit((form) => api("POST", `/cases/${caseId}/follow-ups`, {
    body: { due_date: form.get("due_date"), action: form.get("action") }, headers: idempotent(),
  }), done);
  return html`
    <form class="card" onSubmit=${submit} onKeyDown=${(e) => e.key === "Escape" && done()} data-testid="follow-up-form">
      <label>${t("follow_up.action")}<input name="action" required data-autofocus /></label>
      <label>${t("follow_up.due_date")}<input name="due_date" type="date" required value=${isoDay(7)} /></label>
      <${ErrorNote} error=${error} />
      <${FormButtons} busy=${busy} done=${done} label=${t("follow_up.schedule")} />
    </form>`;
}

const CATEGORIES = ["exclusion_error", "payment", "staff_conduct", "data_correction", "other"];
const CHANNELS = ["in_person", "phone", "letter", "hotline"];

function GrievanceForm({ household, caseId, application, done }) {
  const { submit, error, busy } = useSubmit((form) => api("POST", "/grievances", {
    body: {
      category: application ? "appeal" : form.get("category"), channel: form.get("channel"),
      complainant: { kind: "person", person_id: form.get("person_id") }, description: form.get("description"),
      application_id: application?.id, case_id: application ? undefined : caseId,
    },
    headers: idempotent(),
  }), done);
  return html`
    <form class="card" onSubmit=${submit} onKeyDown=${(e) => e.key === "Escape" && done()} data-testid="grievance-form">
      <h3>${application ? `${t("appeal.title")} ${application.reference}` : t("grievance.title")}</h3>
      ${!application && html`<label>${t("grievance.category")}
        <select name="category">${CATEGORIES.map((c) => html`<option value=${c} key=${c}>${term("category", c)}</option>`)}</select></label>`}
      <label>${t("grievance.channel")}
        <select name="channel">${CHANNELS.map((c) => html`<option value=${c} key=${c}>${term("channel", c)}</option>`)}</select></label>
      <label>${t("grievance.complainant")}
        <select name="person_id">${household.members.map((m) => html`<option value=${m.id} key=${m.id}
          selected=${application ? m.id === application.person_id : m.id === household.head_id}>${m.family_name} ${m.given_name}</option>`)}</select></label>
      <label>${t("grievance.description")}<textarea name="description" required rows="3"></textarea></label>
      <${ErrorNote} error=${error} />
      <${FormButtons} busy=${busy} done=${done} label=${application ? t("appeal.lodge") : t("grievance.lodge")} />
    </form>`;
}

// Refusal reasons a supervisor picks from (the API takes any code; these are the ones the console offers).
const REFUSALS = ["not_eligible", "income_above_threshold", "documents_missing", "already_receiving", "other"];

function DecisionForm({ application, done }) {
  const { submit, error, busy } = useSubmit((form) => api("POST", `/applications/${application.id}/decision`, {
    body: { decision: form.get("decision"), reason_text: form.get("reason_text") || undefined,
      reason_code: form.get("decision") === "rejected" ? form.get("reason_code") : undefined },
    headers: { ...idempotent(), "If-Match": `"${application.version}"` },
  }), done);
  return html`
    <form class="card" onSubmit=${submit} onKeyDown=${(e) => e.key === "Escape" && done()} data-testid="decision-form">
      <fieldset><legend>${t("decision.title")}</legend>
        <label class="inline"><input type="radio" name="decision" value="approved" required />${t("decision.approve")}</label>
        <label class="inline"><input type="radio" name="decision" value="rejected" />${t("decision.reject")}</label>
      </fieldset>
      <label>${t("decision.reason_code")}
        <select name="reason_code">${REFUSALS.map((r) => html`<option value=${r} key=${r}>${t(`refusal.${r}`)}</option>`)}</select></label>
      <label>${t("decision.reason")}<textarea name="reason_text" rows="2"></textarea></label>
      <p class="hint">${t("decision.reason_hint")}</p>
      <${ErrorNote} error=${error} />
      <${FormButtons} busy=${busy} done=${done} label=${t("decision.record")} />
    </form>`;
}

function Application({ application, household }) {
  const [open, setOpen] = useState(null); // "decide" | "appeal"
  const a = application;
  const decided = ["approved", "rejected"].includes(a.status);
  return html`
    <li data-testid="application" data-reference=${a.reference}>
      <strong>${a.reference}</strong> ${`${a.scheme_name} — ${term("application", a.status)} · ${t("application.due")} `}${date(a.decision_due_date)}${a.overdue ? html` <span class="badge">${t("overdue")}</span>` : ""}
      ${a.decision?.reason_text && html`<div class="hint">${t("decision.reason")}: ${a.decision.reason_text}</div>`}
      <div class="actions">
        <a class="button" href=${`#/print/receipt/${a.id}`}>${t("print.receipt")}</a>
        ${isSupervisor() && a.route === "office" && ["submitted", "pending_information"].includes(a.status)
          && html`<button type="button" onClick=${() => setOpen("decide")}>${t("decision.title")}</button>`}
        ${decided && html`<button type="button" onClick=${() => setOpen("appeal")}>${t("appeal.title")}</button>`}
      </div>
      ${open === "decide" && html`<${DecisionForm} application=${a} done=${() => setOpen(null)} />`}
      ${open === "appeal" && html`<${GrievanceForm} household=${household} application=${a} done=${() => setOpen(null)} />`}
    </li>`;
}

function Timeline({ caseId }) {
  const [entries, setEntries] = useState(null);
  useEffect(() => { get(`/cases/${caseId}/timeline`).then((body) => setEntries(body.items || body)); }, [caseId, casesVersion.value]);
  if (!entries) return null;
  return html`<ol class="timeline" data-testid="timeline">${entries.map((e, i) => html`<li key=${i}>
    ${date(e.at)} — ${has(`timeline.${e.kind}`) ? t(`timeline.${e.kind}`) : e.kind}${e.actor ? ` (${e.actor})` : ""}</li>`)}</ol>`;
}

function Case({ item, household }) {
  const [data, setData] = useState(null);
  const [form, setForm] = useState(null); // "follow-up" | "grievance" | "referral"
  const version = casesVersion.value;
  useEffect(() => {
    const q = query({ case_id: item.id, limit: 100 });
    Promise.all([get(`/applications${q}`), get(`/referrals${q}`), get(`/follow-ups${q}`), get(`/grievances${q}`)])
      .then(([applications, referrals, followUps, grievances]) => setData({ applications: applications.items,
        referrals: referrals.items, followUps: followUps.items, grievances: grievances.items }));
  }, [item.id, version]);
  const done = () => setForm(null);
  return html`
    <article class="card" data-testid="case">
      <h3>${t("case.title")} · ${term("case", item.status)} · ${date(item.opened_at)}</h3>
      <div class="actions">
        <button type="button" onClick=${() => setForm("referral")}>${t("referral.new")}</button>
        <button type="button" onClick=${() => setForm("follow-up")} data-testid="new-follow-up">${t("follow_up.new")}</button>
        <button type="button" onClick=${() => setForm("grievance")} data-testid="new-grievance">${t("grievance.new")}</button>
      </div>
      ${form === "referral" && html`<${ReferralForm} household=${household} caseId=${item.id} done=${done} />`}
      ${form === "follow-up" && html`<${FollowUpForm} caseId=${item.id} done=${done} />`}
      ${form === "grievance" && html`<${GrievanceForm} household=${household} caseId=${item.id} done=${done} />`}
      ${data && html`
        <h4>${t("case.applications")}</h4>
        <ul>${data.applications.map((a) => html`<${Application} key=${a.id} application=${a} household=${household} />`)}</ul>
        <h4>${t("case.referrals")}</h4>
        <ul>${data.referrals.map((r) => html`<li key=${r.id} data-testid="referral"><strong>${r.reference}</strong>
          ${r.agency_name || r.agency}${r.service_name ? ` · ${r.service_name}` : ""} — ${term("referral", r.status)} · ${t("referral.due_date")} ${date(r.due_date)}
          <a class="button" href=${`#/print/slip/${r.id}`}>${t("print.slip")}</a></li>`)}</ul>
        <h4>${t("case.follow_ups")}</h4>
        <ul>${data.followUps.map((f) => html`<li key=${f.id} data-testid="follow-up">${date(f.due_date)} — ${f.action}
          ${f.overdue ? html` <span class="badge">${t("overdue")}</span>` : ""}</li>`)}</ul>
        <h4>${t("case.grievances")}</h4>
        <ul>${data.grievances.map((g) => html`<li key=${g.id} data-testid="grievance"><strong>${g.reference}</strong>
          ${term("category", g.category)} — ${term("grievance", g.status)} · ${t("grievance.answer_by")} ${date(g.sla_due_date)}
          <a class="button" href=${`#/print/acknowledgement/${g.id}`}>${t("print.acknowledgement")}</a></li>`)}</ul>
        <h4>${t("case.timeline")}</h4>
        <${Timeline} caseId=${item.id} />`}
    </article>`;
}

export function Cases({ household }) {
  const [cases, setCases] = useState(null);
  const [error, setError] = useState(null);
  const version = casesVersion.value;
  useEffect(() => {
    get(`/cases${query({ household_id: household.id, limit: 20 })}`).then((page) => setCases(page.items), setError);
  }, [household.id, version]);
  async function open() {
    try {
      await openCaseFor(household);
      casesChanged();
    } catch (problem) {
      setError(problem);
    }
  }
  return html`
    <section aria-labelledby="cases-title">
      <h2 id="cases-title">${t("case.list")}</h2>
      <${ErrorNote} error=${error} />
      ${cases && cases.length === 0 && html`<button type="button" onClick=${open}>${t("case.start")}</button>`}
      ${cases && cases.map((item) => html`<${Case} key=${item.id} item=${item} household=${household} />`)}
    </section>`;
}
