// A household's page: who they are, their consent, eligibility (eligibility.js) and their cases with
// everything in them (cases.js). Edits carry the ETag the page was read with (If-Match): when someone else
// changed the household meanwhile, the clerk sees what changed and may apply their change again.
import { html, useEffect, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { Problem, api, get } from "./api.js";
import { ErrorNote, date, placeName, term } from "./common.js";
import { Eligibility } from "./eligibility.js";
import { Cases } from "./cases.js";
import { WG_DOMAINS } from "./register.js";

const EDITABLE = ["address", "area_type", "idpoor_level", "idpoor_card"];

function editable(household) {
  return {
    address: household.address || "", area_type: household.area_type,
    idpoor_level: household.idpoor.level ? String(household.idpoor.level) : "", idpoor_card: household.idpoor.card_number || "",
  };
}

function changes(before, after) {
  const body = {};
  if (after.address !== before.address) body.address = after.address || null;
  if (after.area_type !== before.area_type) body.area_type = after.area_type;
  if (after.idpoor_level !== before.idpoor_level || after.idpoor_card !== before.idpoor_card) {
    body.idpoor = after.idpoor_level ? { level: Number(after.idpoor_level), card_number: after.idpoor_card || null } : null;
  }
  return body;
}

function EditHousehold({ household, etag, done }) {
  const original = editable(household);
  const [values, setValues] = useState(original);
  const [base, setBase] = useState({ household, etag });
  const [conflict, setConflict] = useState(null);
  const [error, setError] = useState(null);
  const set = (key) => (e) => setValues({ ...values, [key]: e.target.value });

  async function save(event) {
    event?.preventDefault();
    setError(null);
    try {
      await api("PATCH", `/households/${household.id}`, {
        body: changes(editable(base.household), values), headers: { "If-Match": base.etag },
      });
      done(true);
    } catch (problem) {
      if (problem instanceof Problem && problem.status === 412) {
        // Someone saved first: show what they changed, and let the clerk apply theirs on top.
        const { body: current, headers } = await api("GET", `/households/${household.id}`, { full: true });
        const theirs = editable(current);
        setConflict(EDITABLE.filter((k) => theirs[k] !== editable(base.household)[k])
          .map((k) => ({ key: k, was: editable(base.household)[k], now: theirs[k] })));
        setBase({ household: current, etag: headers.get("ETag") });
      } else {
        setError(problem);
      }
    }
  }
  return html`
    <form class="card" onSubmit=${save} onKeyDown=${(e) => e.key === "Escape" && done(false)} data-testid="edit-household">
      <h2>${t("household.edit")}</h2>
      <div class="grid2">
        <label>${t("register.address")}<input value=${values.address} onInput=${set("address")} name="address" /></label>
        <label>${t("register.area_type")}
          <select value=${values.area_type} onChange=${set("area_type")}>
            <option value="rural">${t("area.rural")}</option><option value="urban">${t("area.urban")}</option>
          </select></label>
        <label>${t("register.idpoor_level")}
          <select value=${values.idpoor_level} onChange=${set("idpoor_level")}>
            <option value="">${t("register.idpoor_none")}</option><option value="1">1</option><option value="2">2</option>
          </select></label>
        <label>${t("register.idpoor_card")}<input value=${values.idpoor_card} onInput=${set("idpoor_card")} /></label>
      </div>
      ${conflict && html`
        <div class="notice" role="alert" data-testid="conflict">
          <p>${t("household.conflict")}</p>
          <ul>${conflict.map((c) => html`<li key=${c.key}>${t(`household.field.${c.key}`)}: «${c.was || "—"}» → «${c.now || "—"}»</li>`)}</ul>
          <p>${t("household.conflict_reapply")}</p>
        </div>`}
      <${ErrorNote} error=${error} />
      <div class="actions">
        <button type="submit" class="primary">${conflict ? t("household.reapply") : t("household.save")}</button>
        <button type="button" onClick=${() => done(false)}>${t("household.cancel")}</button>
      </div>
    </form>`;
}

function Members({ household }) {
  return html`
    <table data-testid="members">
      <caption class="hint">${t("register.members")}</caption>
      <thead><tr><th>${t("person.name")}</th><th>${t("person.relationship")}</th><th>${t("person.sex")}</th>
        <th>${t("person.age")}</th><th>${t("person.national_id")}</th><th>${t("person.phone")}</th><th>${t("wg.title")}</th></tr></thead>
      <tbody>${household.members.map((m) => html`<tr key=${m.id}>
        <td>${m.family_name} ${m.given_name}</td><td>${term("relationship", m.relationship)}</td><td>${term("sex", m.sex)}</td>
        <td>${m.age_years}</td><td>${m.national_id || ""}</td><td>${m.phone || ""}</td>
        <td>${WG_DOMAINS.filter((d) => m.disability[d] !== "none").map((d) => `${t(`wg.${d}.short`)}: ${t(`level.${m.disability[d]}`)}`).join("; ") || "—"}</td>
      </tr>`)}</tbody>
    </table>`;
}

function Consent({ id }) {
  const [history, setHistory] = useState(null);
  useEffect(() => { get(`/households/${id}/consent`).then(setHistory, () => setHistory([])); }, [id]);
  if (!history) return null;
  return html`
    <section aria-labelledby="consent-title">
      <h2 id="consent-title">${t("household.consent")}</h2>
      <ul>${history.map((c, i) => html`<li key=${c.id}>${date(c.recorded_at)} — ${c.purposes.map((p) => t(`purpose.${p}`)).join(", ")}
        (${term("method", c.method)}, ${c.given_by})${i === 0 ? ` · ${t("household.in_force")}` : ""}</li>`)}</ul>
    </section>`;
}

export function Household({ id }) {
  const [state, setState] = useState(null);
  const [error, setError] = useState(null);
  const [editing, setEditing] = useState(false);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api("GET", `/households/${id}`, { full: true })
      .then(({ body, headers }) => setState({ household: body, etag: headers.get("ETag") }), setError);
  }, [id, version]);
  if (error) return html`<h1 tabindex="-1">${t("household.title")}</h1><${ErrorNote} error=${error} />`;
  if (!state) return html`<p>${t("loading")}</p>`;
  const { household } = state;
  const head = household.members.find((m) => m.id === household.head_id);
  const where = household.location;
  return html`
    <section>
      <h1 tabindex="-1">${head ? `${head.family_name} ${head.given_name}` : t("household.no_head")}</h1>
      <p>${["village", "commune", "district", "province"].map((level) => placeName(where[`${level}_km`], where[level]))
        .filter(Boolean).join(", ")}
        ${household.address ? ` — ${household.address}` : ""}${` · ${term("area", household.area_type)} · `}
        ${t("household.size").replace("{n}", household.size)}
        ${household.idpoor.level ? html`${" · "}<span class="badge">${t("household.idpoor")} ${household.idpoor.level}
          ${household.idpoor.card_number || ""}</span>` : ""}</p>
      ${editing
        ? html`<${EditHousehold} household=${household} etag=${state.etag}
            done=${(saved) => { setEditing(false); if (saved) setVersion(version + 1); }} />`
        : html`<div class="actions"><button type="button" onClick=${() => setEditing(true)} data-testid="edit">${t("household.edit")}</button></div>`}
      <${Members} household=${household} />
      <${Consent} id=${id} />
      <${Eligibility} household=${household} />
      <${Cases} household=${household} />
    </section>`;
}
