// Eligibility: one button screens every member against every scheme; the grid shows members × schemes
// with the verdict, the reasons in plain words, what is missing and what would change it; from a cell the
// clerk files an application or a referral.
import { html, useEffect, useState } from "../shared/ui.js";
import { has, t } from "../shared/i18n.js";
import { api, get, post } from "./api.js";
import { ErrorNote, date, term } from "./common.js";
import { ReferralForm, casesChanged, openCaseFor } from "./cases.js";

function Cell({ determination, household, onFiled }) {
  const [referring, setReferring] = useState(false);
  const [error, setError] = useState(null);
  const [filed, setFiled] = useState(null);
  if (!determination) return html`<td>—</td>`;
  const d = determination;
  async function apply() {
    setError(null);
    try {
      const caseId = await openCaseFor(household);
      const application = await api("POST", `/cases/${caseId}/applications`, {
        body: { scheme_code: d.scheme_code, person_id: d.person_id || undefined },
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      setFiled(application);
      casesChanged();
      onFiled?.(application);
    } catch (problem) {
      setError(problem);
    }
  }
  return html`
    <td class=${`outcome-${d.outcome}`} data-scheme=${d.scheme_code} data-outcome=${d.outcome}>
      <strong>${term("outcome", d.outcome)}</strong>
      ${d.benefit?.description && html`<div class="hint">${d.benefit.description}</div>`}
      <details>
        <summary>${t("eligibility.why")}</summary>
        <ul>${d.reasons.map((r, i) => html`<li key=${i}>${t(`reason.${r.result}`)}: ${r.message}</li>`)}</ul>
        ${d.missing_facts.length > 0 && html`<p>${t("eligibility.missing")}: ${d.missing_facts.map((f) => (has(`fact.${f}`) ? t(`fact.${f}`) : f)).join(", ")}</p>
          <p>${t("eligibility.bring")}</p>`}
        ${d.hints.length > 0 && html`<p>${t("eligibility.hints")}: ${d.hints.join("; ")}</p>`}
      </details>
      ${filed
        ? html`<p role="status">${t("eligibility.filed")} <a href=${`#/print/receipt/${filed.id}`}>${filed.reference}</a></p>`
        : d.outcome !== "not_eligible" && html`<button type="button" onClick=${apply} data-testid="apply">${t("eligibility.apply")}</button>`}
      <button type="button" onClick=${() => setReferring(!referring)} data-testid="refer">${t("eligibility.refer")}</button>
      ${referring && html`<${ReferralForm} household=${household} personId=${d.person_id} done=${() => setReferring(false)} />`}
      <${ErrorNote} error=${error} />
    </td>`;
}

export function Eligibility({ household }) {
  const [screening, setScreening] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => {
    // The latest screening, if the household was screened before.
    get(`/households/${household.id}/screenings?limit=1`).then(async (page) => {
      const latest = page.items[0];
      if (latest) setScreening(await get(`/screenings/${latest.id}`));
    }).catch(setError);
  }, [household.id]);
  async function screen() {
    setBusy(true);
    setError(null);
    try {
      setScreening(await post(`/households/${household.id}/screenings`, {}));
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  }
  const schemes = screening ? [...new Map(screening.determinations.map((d) => [d.scheme_code, d.scheme_name])).entries()] : [];
  const rows = [...household.members.map((m) => ({ id: m.id, name: `${m.family_name} ${m.given_name}` })),
    { id: null, name: t("eligibility.household") }];
  const find = (personId, scheme) => screening.determinations.find((d) => d.scheme_code === scheme && (d.person_id || null) === personId);
  const usedRows = screening ? rows.filter((r) => schemes.some(([code]) => find(r.id, code))) : [];
  return html`
    <section aria-labelledby="eligibility-title">
      <h2 id="eligibility-title">${t("eligibility.title")}</h2>
      <div class="actions">
        <button type="button" class="primary" onClick=${screen} disabled=${busy} data-testid="screen">${t("eligibility.screen")}</button>
        ${screening && html`<span class="hint">${t("eligibility.as_of")} ${date(screening.as_of)}${" · "}
          ${["eligible", "needs_information", "not_eligible", "error"].map((o) => `${term("outcome", o)} ${screening.counts[o]}`).join(" · ")}</span>`}
      </div>
      <${ErrorNote} error=${error} />
      ${screening && html`
        <div class="grid-wrap">
          <table class="grid" data-testid="grid" data-screening=${screening.id}>
            <thead><tr><th scope="col">${t("person.name")}</th>${schemes.map(([code, name]) => html`<th scope="col" key=${code}>${name}</th>`)}</tr></thead>
            <tbody>${usedRows.map((row) => html`<tr key=${row.id}>
              <th scope="row">${row.name}</th>
              ${schemes.map(([code]) => html`<${Cell} key=${code} determination=${find(row.id, code)} household=${household} />`)}
            </tr>`)}</tbody>
          </table>
        </div>`}
    </section>`;
}
