// The office report for supervisors (issue 17): the office's own indicators, this month against the last,
// computed at the office (GET /api/v1/office-report). A chart of the chosen indicator and the table of all.
import { effect, html, render, signal, useEffect, useState } from "../shared/ui.js";
import { startI18n, t } from "../shared/i18n.js";
import { LanguageSwitcher } from "../shared/language-switcher.js";
import { api, signOut, SignIn, tf, token } from "./api.js";
import { FigureTable } from "./table.js";
import { thisMonth, valueLabel } from "./figures.js";

const BREAKDOWNS = ["sex", "age_band", "disability", "scheme"];
const month = signal(thisMonth());
const breakdown = signal("");

const label = (name) => t(`indicator.${name}`);

function Report() {
  const [report, setReport] = useState(null);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    const query = new URLSearchParams({ month: month.value, ...(breakdown.value ? { breakdown: breakdown.value } : {}) });
    api(`/api/v1/office-report?${query}`).then((body) => { setReport(body); setProblem(null); }, (error) => setProblem(error.message));
  }, [month.value, breakdown.value]);
  if (problem) return html`<p role="alert" class="problem">${tf("error", { detail: problem })}</p>`;
  if (!report) return html`<p>${t("loading")}</p>`;
  const by = report.breakdown;
  const columns = [{ code: "indicator", label: t("col.indicator"), show: label },
    ...(by ? [{ code: by, label: t(`breakdown.${by}`), show: (v) => valueLabel(by, v) }] : []),
    { code: "this_month", label: `${t("col.this_month")} (${report.month})`, numeric: true },
    { code: "last_month", label: `${t("col.last_month")} (${report.previous_month})`, numeric: true },
    { code: "change", label: t("col.change"), numeric: true }];
  const change = (a, b) => (a === null || b === null ? null : Math.round((a - b) * 10000) / 10000);
  const rows = report.items.flatMap((item) => item.rows.map((r) => [item.indicator, ...(by ? [r[by]] : []),
    r.this_month, r.last_month, change(r.this_month ?? 0, r.last_month ?? 0)]));
  return html`
    <${FigureTable} id="report-table" caption=${tf("report.caption", { office: report.office_code, month: report.month, previous: report.previous_month })}
                    title=${`office-report ${report.office_code} ${report.month}`} columns=${columns} rows=${rows} />`;
}

function OfficeReport() {
  return html`
    <header class="bar">
      <span class="brand">Guichet</span>
      <${LanguageSwitcher} />
      ${token.value && html`<button type="button" class="signout" onClick=${signOut}>${t("signout")}</button>`}
    </header>
    <main>
      <h1>${t("report.heading")}</h1>
      ${token.value ? html`
        <form class="filters" aria-label=${t("filters.label")} onSubmit=${(e) => e.preventDefault()}>
          <label>${t("report.month")}
            <input type="month" name="month" value=${month.value} required
                   onChange=${(e) => { if (e.target.value) month.value = e.target.value; }} /></label>
          <label>${t("filters.breakdown")}
            <select name="breakdown" value=${breakdown.value} onChange=${(e) => { breakdown.value = e.target.value; }}>
              <option value="">${t("filters.none")}</option>
              ${BREAKDOWNS.map((b) => html`<option value=${b}>${t(`breakdown.${b}`)}</option>`)}
            </select></label>
        </form>
        <${Report} />` : html`<${SignIn} />`}
    </main>`;
}

await startI18n(new URL("./i18n/", import.meta.url));
effect(() => { document.title = t("report.title"); });
render(html`<${OfficeReport} />`, document.getElementById("app"));
