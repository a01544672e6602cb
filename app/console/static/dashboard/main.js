// The ministry's dashboard at central (issue 17): an indicator's monthly trend, drilled from the country to
// a province, a district and an office, broken down by sex, age band or disability; women's share of the
// clients served; the offices' health. Every chart has its table; every table exports to CSV and Excel.
import { effect, html, render, signal, useEffect, useState } from "../shared/ui.js";
import { language, startI18n, t } from "../shared/i18n.js";
import { LanguageSwitcher } from "../shared/language-switcher.js";
import { api, signOut, SignIn, tf, token } from "./api.js";
import { TrendChart } from "./chart.js";
import { FigureTable } from "./table.js";
import { monthsBack, monthEnd, thisMonth, valueLabel } from "./figures.js";

const INDICATORS = ["clients_served", "persons_registered", "screenings", "applications_submitted",
  "applications_approved", "applications_rejected", "approval_rate", "median_days_to_decision", "referrals_completed",
  "grievances_resolved", "grievances_overdue", "beneficiaries"];
const BREAKDOWNS = ["sex", "age_band", "disability"];
const NEXT_LEVEL = { country: "province", province: "district", district: "office", office: null };

const indicator = signal(INDICATORS[0]);
const breakdown = signal("");
const month = signal(thisMonth());
const path = signal([]); // [{level, code, name}] from the country down
const catalog = signal(null);
const names = signal({}); // place code -> {name, name_km}

const level = () => (path.value.length ? path.value[path.value.length - 1].level : "country");
const placeName = (code) => {
  const known = names.value[code];
  if (!known) return code;
  return language.value === "km" && known.name_km ? known.name_km : known.name;
};
const filters = () => Object.fromEntries(path.value.map((p) => [p.level, p.code]));

async function indicatorRows(params) {
  const query = new URLSearchParams({ indicator: indicator.value, period: "month", ...params });
  return (await api(`/api/v1/monitoring/indicators?${query}`)).rows;
}

async function learnNames(levelShown, rows) {
  if (levelShown === "province" && !Object.keys(names.value).some((c) => c.length === 2)) {
    const page = await api("/api/v1/locations?limit=100");
    names.value = { ...names.value, ...Object.fromEntries(page.items.map((l) => [l.code, l])) };
  } else if (levelShown === "district") {
    const province = filters().province;
    if (!Object.keys(names.value).some((c) => c.length === 4 && c.startsWith(province))) {
      const page = await api(`/api/v1/locations?parent=${province}&limit=100`);
      names.value = { ...names.value, ...Object.fromEntries(page.items.map((l) => [l.code, l])) };
    }
  }
  return rows;
}

function Filters() {
  const allowed = catalog.value?.find((i) => i.name === indicator.value)?.breakdowns ?? [];
  return html`
    <form class="filters" aria-label=${t("filters.label")} onSubmit=${(e) => e.preventDefault()}>
      <label>${t("filters.indicator")}
        <select name="indicator" value=${indicator.value} onChange=${(e) => { indicator.value = e.target.value; }}>
          ${INDICATORS.map((name) => html`<option value=${name}>${t(`indicator.${name}`)}</option>`)}
        </select></label>
      <label>${t("filters.breakdown")}
        <select name="breakdown" value=${breakdown.value} onChange=${(e) => { breakdown.value = e.target.value; }}>
          <option value="">${t("filters.none")}</option>
          ${BREAKDOWNS.filter((b) => allowed.includes(b)).map((b) => html`<option value=${b}>${t(`breakdown.${b}`)}</option>`)}
        </select></label>
      <label>${t("filters.month")}
        <input type="month" name="month" value=${month.value} required
               onChange=${(e) => { if (e.target.value) month.value = e.target.value; }} /></label>
    </form>`;
}

function Breadcrumb() {
  return html`
    <nav aria-label=${t("place.label")} class="breadcrumb">
      <ol>
        <li><button type="button" aria-current=${path.value.length ? undefined : "page"}
                    onClick=${() => { path.value = []; }}>${t("place.country")}</button></li>
        ${path.value.map((p, i) => html`
          <li><button type="button" aria-current=${i === path.value.length - 1 ? "page" : undefined}
                      onClick=${() => { path.value = path.value.slice(0, i + 1); }}>
            ${t(`place.level.${p.level}`)}: ${p.level === "office" ? p.code : placeName(p.code)}</button></li>`)}
      </ol>
    </nav>`;
}

// Women's shares depend on the month and the place only: kept while the indicator or the breakdown changes.
const shares = new Map();
function coverage(from, to) {
  const key = `${to}|${JSON.stringify(path.value)}`;
  if (!shares.has(key)) {
    const query = (indicator, range) => api(`/api/v1/monitoring/indicators?${new URLSearchParams(
      { indicator, period: "month", ...range, ...filters(), group_by: "sex" })}`).then((body) => body.rows);
    const answer = Promise.all([query("clients_served", { from: `${to.slice(0, 7)}-01`, to }), query("persons_registered", { from, to })]);
    answer.catch(() => shares.delete(key));
    shares.set(key, answer);
  }
  return shares.get(key);
}

// What the current choice shows, loaded together; a newer choice wins over a slower older answer.
let asked = 0;
function useFigures() {
  const [figures, setFigures] = useState({ loading: true });
  useEffect(() => {
    const mine = ++asked;
    const to = monthEnd(month.value);
    const from = `${monthsBack(month.value, 11)}-01`;
    const single = { from: `${month.value}-01`, to };
    const next = NEXT_LEVEL[level()];
    const by = breakdown.value;
    const allowed = catalog.value?.find((i) => i.name === indicator.value)?.breakdowns ?? [];
    setFigures((old) => ({ ...old, loading: true }));
    Promise.all([
      indicatorRows({ from, to, ...filters(), ...(by && allowed.includes(by) ? { group_by: by } : {}) }),
      indicatorRows({ ...single, ...filters(), ...(next ? { group_by: next } : {}) }).then((rows) => learnNames(next, rows)),
      coverage(from, to),
    ]).then(([trend, places, [clients, registered]]) => {
      if (mine === asked) setFigures({ trend, places, next, by: by && allowed.includes(by) ? by : "", clients, registered, from, to });
    }).catch((error) => { if (mine === asked) setFigures({ error: error.message }); });
  }, [indicator.value, breakdown.value, month.value, JSON.stringify(path.value), catalog.value]);
  return figures;
}

function Trend({ figures }) {
  const title = t(`indicator.${indicator.value}`);
  const labels = [];
  for (let i = 11; i >= 0; i--) labels.push(monthsBack(month.value, i));
  const by = figures.by;
  const keys = by ? [...new Set(figures.trend.map((r) => String(r[by])))] : ["total"];
  const cell = (period, key) => figures.trend.find((r) => r.period === period && (!by || String(r[by]) === key));
  const series = keys.map((key) => ({
    label: by ? valueLabel(by, key) : t("total"),
    values: labels.map((p) => cell(p, key)?.value ?? null),
  }));
  const columns = [{ code: "period", label: t("col.period") },
    ...(by ? [{ code: by, label: t(`breakdown.${by}`), show: (v) => valueLabel(by, v) }] : []),
    { code: "value", label: t("col.value"), numeric: true }, { code: "suppressed", label: t("col.suppressed") }];
  const rows = figures.trend.map((r) => [r.period, ...(by ? [r[by] === null ? null : String(r[by])] : []), r.value, r.suppressed]);
  const caption = tf("trend.caption", { indicator: title });
  return html`
    <section aria-labelledby="trend-heading">
      <h2 id="trend-heading">${t("trend.heading")}</h2>
      <${TrendChart} caption=${caption} name=${`${indicator.value}-trend`} labels=${labels} series=${series} />
      <${FigureTable} id="trend-table" caption=${caption} title=${`${indicator.value} ${figures.from} ${figures.to}`}
                      columns=${columns} rows=${rows} />
    </section>`;
}

function Places({ figures }) {
  const title = t(`indicator.${indicator.value}`);
  const next = figures.next;
  const drill = (code) => { path.value = [...path.value, { level: next, code }]; };
  const columns = next
    ? [{ code: next === "office" ? "office" : next, label: t(`place.level.${next}`),
         show: (code) => html`<button type="button" class="link" onClick=${() => drill(code)}
                                     aria-label=${tf("place.drill", { name: next === "office" ? code : placeName(code) })}>
                                ${next === "office" ? code : placeName(code)}</button>` },
       { code: "code", label: t("col.code") }, { code: "value", label: t("col.value"), numeric: true },
       { code: "suppressed", label: t("col.suppressed") }]
    : [{ code: "place", label: t("col.place") }, { code: "value", label: t("col.value"), numeric: true },
       { code: "suppressed", label: t("col.suppressed") }];
  const rows = figures.places.filter((r) => !next || r[next] !== null)
    .map((r) => next ? [r[next], r[next], r.value, r.suppressed] : [path.value.at(-1)?.code ?? t("place.country"), r.value, r.suppressed]);
  const levelName = next ? t(`place.level.${next}`) : t(`place.level.${level()}`);
  return html`
    <section aria-labelledby="geo-heading">
      <h2 id="geo-heading">${tf("geo.heading", { month: month.value })}</h2>
      <${FigureTable} id="place-table" caption=${tf("geo.caption", { indicator: title, month: month.value, level: levelName })}
                      title=${`${indicator.value} ${month.value} ${next ?? level()}`} columns=${columns} rows=${rows} />
    </section>`;
}

function womenShare(rows) {
  if (rows.some((r) => r.suppressed)) return { suppressed: true, value: null };
  const total = rows.reduce((sum, r) => sum + (r.sex ? r.value : 0), 0);
  const women = rows.filter((r) => r.sex === "female").reduce((sum, r) => sum + r.value, 0);
  return { suppressed: false, value: total ? Math.round((1000 * women) / total) / 10 : null };
}

function Coverage({ figures }) {
  const clients = womenShare(figures.clients);
  const registered = womenShare(figures.registered);
  const columns = [{ code: "measure", label: t("col.indicator") }, { code: "share_percent", label: `${t("col.share")} (%)`, numeric: true },
    { code: "suppressed", label: t("col.suppressed") }];
  const rows = [[t("coverage.women_clients"), clients.value, clients.suppressed],
    [t("coverage.women_registered"), registered.value, registered.suppressed]];
  return html`
    <section aria-labelledby="coverage-heading">
      <h2 id="coverage-heading">${t("coverage.heading")}</h2>
      <${FigureTable} id="coverage-table" caption=${tf("coverage.caption", { month: month.value })}
                      title=${`coverage ${month.value}`} columns=${columns} rows=${rows} />
    </section>`;
}

function Health() {
  const [offices, setOffices] = useState(null);
  useEffect(() => { api("/api/v1/monitoring/offices").then((body) => setOffices(body.items), () => setOffices([])); }, []);
  if (offices === null) return html`<p>${t("loading")}</p>`;
  const status = (o) => o.last_sync_at === null ? "never" : o.silent_seconds > 2 * 86400 ? "stopped" : "ok";
  const columns = [{ code: "office_code", label: t("col.office") }, { code: "name", label: t("col.name") },
    { code: "last_event_at", label: t("col.last_event") }, { code: "last_sync_at", label: t("col.last_sync") },
    { code: "events_received", label: t("col.events"), numeric: true }, { code: "rejected_received", label: t("col.rejected"), numeric: true },
    { code: "status", label: t("col.status"), show: (s) => html`<span class=${`status-${s}`}>${t(`health.${s}`)}</span>` }];
  const day = (v) => v ? v.slice(0, 16).replace("T", " ") : null;
  const rows = offices.map((o) => [o.office_code, o.name, day(o.last_event_at), day(o.last_sync_at), o.events_received,
    o.rejected_received, status(o)]);
  return html`
    <section aria-labelledby="health-heading">
      <h2 id="health-heading">${t("health.heading")}</h2>
      <${FigureTable} id="health-table" caption=${t("health.caption")} title="office-health" columns=${columns} rows=${rows} />
    </section>`;
}

function Figures() {
  const figures = useFigures();
  if (figures.error) return html`<p role="alert" class="problem">${tf("error", { detail: figures.error })}</p>`;
  if (!figures.trend) return html`<p>${t("loading")}</p>`;
  return html`
    <div aria-busy=${String(Boolean(figures.loading))}>
      <${Trend} figures=${figures} />
      <${Places} figures=${figures} />
      <${Coverage} figures=${figures} />
    </div>`;
}

function Dashboard() {
  useEffect(() => {
    if (token.value && !catalog.value) api("/api/v1/monitoring/indicators/catalog").then((c) => { catalog.value = c.items; });
  }, [token.value]);
  return html`
    <header class="bar">
      <span class="brand">Guichet</span>
      <${LanguageSwitcher} />
      ${token.value && html`<button type="button" class="signout" onClick=${signOut}>${t("signout")}</button>`}
    </header>
    <main>
      <h1>${t("dashboard.heading")}</h1>
      ${token.value ? html`
        <${Filters} />
        <${Breadcrumb} />
        ${catalog.value ? html`<${Figures} />` : html`<p>${t("loading")}</p>`}
        <${Health} />` : html`<${SignIn} />`}
    </main>`;
}

await startI18n(new URL("./i18n/", import.meta.url));
effect(() => { document.title = t("dashboard.title"); });
render(html`<${Dashboard} />`, document.getElementById("app"));
