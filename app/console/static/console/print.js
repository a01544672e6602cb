// Printables: the application receipt, the referral slip and the grievance acknowledgement, read from the
// API's printable routes (their JSON form: the HTML form needs the bearer token a link cannot carry) and
// laid out in the clerk's language; the browser prints them (console.css hides the console around them).
import { html, useEffect, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { get } from "./api.js";
import { ErrorNote, date, term } from "./common.js";

const SOURCES = {
  receipt: (id) => `/applications/${id}/receipt`,
  slip: (id) => `/referrals/${id}/slip`,
  acknowledgement: (id) => `/grievances/${id}/acknowledgement`,
};

function Rows({ rows }) {
  return html`<dl>${rows.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([label, value]) => html`<div key=${label}><dt>${label}</dt><dd>${value}</dd></div>`)}</dl>`;
}

function Receipt({ r }) {
  return html`
    <h1 tabindex="-1">${t("print.receipt_title")}</h1>
    <${Rows} rows=${[[t("print.reference"), r.reference], [t("print.scheme"), `${r.scheme_name} (${r.agency})`],
      [t("print.applicant"), r.applicant_name], [t("print.submitted"), `${date(r.submitted_on)} ${r.submitted_time}`],
      [t("print.office"), r.office_name], [t("print.received_by"), r.received_by],
      [t("print.status"), term("application", r.status)], [t("print.decision_due"), date(r.decision_due_date)],
      [t("print.appeal_window"), t("print.appeal_days").replace("{n}", r.appeal_window_days)]]} />
    <h2>${t("print.next")}</h2>
    <ul>${r.what_happens_next.map((step, i) => html`<li key=${i}>${step}</li>`)}</ul>`;
}

function Slip({ r }) {
  return html`
    <h1 tabindex="-1">${t("print.slip_title")}</h1>
    <${Rows} rows=${[[t("print.reference"), r.reference], [t("referral.agency"), r.agency_name || r.agency],
      [t("referral.service"), r.service_name || r.service], [t("print.client"), r.client_name], [t("referral.reason"), r.reason],
      [t("print.issued"), date(r.issued_on)], [t("print.office"), r.office_name], [t("print.issued_by"), r.issued_by],
      [t("referral.due_date"), date(r.due_date)]]} />`;
}

function Acknowledgement({ r }) {
  return html`
    <h1 tabindex="-1">${t("print.acknowledgement_title")}</h1>
    <${Rows} rows=${[[t("print.reference"), r.reference], [t("grievance.category"), term("category", r.category)],
      [t("grievance.complainant"), r.complainant_name], [t("grievance.description"), r.description],
      [t("print.application"), r.application_reference], [t("print.scheme"), r.scheme_name],
      [t("print.received"), `${date(r.received_on)} ${r.received_time}`], [t("print.office"), r.office_name],
      [t("print.received_by"), r.received_by], [t("grievance.answer_by"), date(r.answer_due_date)]]} />`;
}

export function Print({ kind, id }) {
  const [record, setRecord] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { get(SOURCES[kind](id)).then(setRecord, setError); }, [kind, id]);
  const Body = { receipt: Receipt, slip: Slip, acknowledgement: Acknowledgement }[kind];
  return html`
    <section class="printable card" data-testid="printable">
      <p class="brand">Guichet</p>
      <${ErrorNote} error=${error} />
      ${record && html`<${Body} r=${record} />`}
      <div class="actions">
        <button type="button" class="primary" onClick=${() => window.print()} data-testid="print">${t("print.print")}</button>
        <button type="button" onClick=${() => history.back()}>${t("register.back")}</button>
      </div>
    </section>`;
}
