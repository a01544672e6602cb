// The registration wizard: place, members (the head first), consent per purpose, review, save. The draft
// is kept in this browser (localStorage) at every keystroke, so it survives a reload, a session that
// ends mid-form and the server being unreachable; it is cleared once saved, and at sign-out (api.js).
// Duplicates and unlikely facts come back from the API before anything is saved (409): the clerk decides.
import { html, useEffect, useRef, useState } from "../shared/ui.js";
import { language, t } from "../shared/i18n.js";
import { Problem, Unreachable, api, get, myOffice, query } from "./api.js";
import { go } from "./route.js";
import { ErrorNote, date, fieldErrors, placeName } from "./common.js";

export const DRAFT = "guichet.draft.registration";
const STEPS = ["place", "members", "consent", "review"];
export const WG_DOMAINS = ["seeing", "hearing", "walking", "remembering", "self_care", "communicating"];
const LEVELS = ["none", "some", "a_lot", "cannot"];
const SEXES = ["female", "male", "other"];
const RELATIONSHIPS = ["head", "spouse", "child", "parent", "sibling", "grandchild", "other_relative", "non_relative"];
const PURPOSES = ["registry", "eligibility_sharing", "referral_sharing", "contact", "registry_sharing"];
const METHODS = ["verbal", "signature", "thumbprint", "written", "guardian"];

const newMember = (relationship) => ({
  family_name: "", given_name: "", sex: "", birth_date: "", birth_year: "", relationship, national_id: "", phone: "",
  disability: Object.fromEntries(WG_DOMAINS.map((d) => [d, "none"])),
});
const newDraft = () => ({
  step: 0,
  place: { village_code: "", village_label: "", address: "", area_type: "rural", idpoor_level: "", idpoor_card: "" },
  members: [newMember("head")],
  consent: { purposes: ["registry"], given_by: "", method: "verbal" },
});

function loadDraft() {
  try {
    return JSON.parse(localStorage.getItem(DRAFT)) || newDraft();
  } catch {
    return newDraft();
  }
}

// The request body the API takes (app/schemas/households.py HouseholdCreate), empty fields left out.
export function requestBody(draft, confirm) {
  const filled = (value) => (value === "" ? undefined : value);
  const { place, consent } = draft;
  return {
    village_code: place.village_code,
    address: filled(place.address.trim()),
    area_type: place.area_type,
    idpoor: place.idpoor_level ? { level: Number(place.idpoor_level), card_number: filled(place.idpoor_card.trim()) } : undefined,
    consent: { purposes: consent.purposes, given_by: consent.given_by.trim() || headName(draft), method: consent.method },
    members: draft.members.map((m) => ({
      family_name: m.family_name.trim(), given_name: m.given_name.trim(), sex: m.sex, relationship: m.relationship,
      birth_date: filled(m.birth_date),
      birth_year: m.birth_date || !m.birth_year ? undefined : Number(m.birth_year),
      national_id: filled(m.national_id.trim()), phone: filled(m.phone.trim()), disability: m.disability,
    })),
    confirm_new: Boolean(confirm.new), confirm_unlikely: Boolean(confirm.unlikely),
  };
}

const headName = (draft) => {
  const head = draft.members.find((m) => m.relationship === "head") || draft.members[0];
  return `${head.family_name} ${head.given_name}`.trim();
};

// The step that holds the field an API error points at ("#/members/0/given_name" is the members step).
function stepOf(pointer) {
  if (pointer.startsWith("#/members")) return 1;
  if (pointer.startsWith("#/consent")) return 2;
  return 0;
}

function Field({ label, path, errors, children }) {
  const error = errors[`#/${path}`];
  return html`
    <label>${label}
      ${children}
      ${error && html`<span class="field-error" id=${`error-${path}`}>${error}</span>`}
    </label>`;
}

function VillagePicker({ place, setPlace, errors }) {
  const [text, setText] = useState("");
  const [found, setFound] = useState([]);
  useEffect(() => {
    const term = text.trim();
    if (term.length < 2) {
      setFound([]);
      return undefined;
    }
    const timer = setTimeout(async () => {
      try {
        // The office's province first (where most clients live), then the rest of the country.
        const province = (await myOffice())?.location_code.slice(0, 2);
        const pages = await Promise.all([
          province ? get(`/locations${query({ level: "village", name: term, within: province, limit: 10 })}`) : { items: [] },
          get(`/locations${query({ level: "village", name: term, limit: 10 })}`),
        ]);
        const seen = new Set();
        setFound(pages.flatMap((page) => page.items).filter((v) => !seen.has(v.code) && seen.add(v.code)).slice(0, 12));
      } catch {
        setFound([]);
      }
    }, 200);
    return () => clearTimeout(timer);
  }, [text]);
  const error = errors["#/village_code"];
  return html`
    <fieldset>
      <legend>${t("register.village")}</legend>
      ${place.village_code
        ? html`<p><strong data-testid="village">${place.village_label}</strong>
            <button type="button" class="link" onClick=${() => setPlace({ ...place, village_code: "", village_label: "" })}>${t("register.village_change")}</button></p>`
        : html`
          <label>${t("register.village_search")}
            <input value=${text} onInput=${(e) => setText(e.target.value)} autocomplete="off" data-autofocus
                   aria-invalid=${error ? "true" : undefined} data-testid="village-search" />
          </label>
          <ul class="results">
            ${found.map((v) => html`<li key=${v.code}>
              <button type="button" class="link" data-code=${v.code} onClick=${() => setPlace({ ...place, village_code: v.code,
                village_label: `${v.name_km || ""} · ${v.name}`.replace(/^ · /, "") })}>${placeName(v.name_km, v.name)}
                <span class="hint"> (${language.value === "km" ? v.name : v.name_km || ""})</span></button></li>`)}
          </ul>`}
      ${error && html`<p class="field-error">${error}</p>`}
    </fieldset>`;
}

function PlaceStep({ draft, update, errors }) {
  const place = draft.place;
  const setPlace = (next) => update({ ...draft, place: next });
  const set = (key) => (e) => setPlace({ ...place, [key]: e.target.value });
  return html`
    <${VillagePicker} place=${place} setPlace=${setPlace} errors=${errors} />
    <div class="grid2">
      <${Field} label=${t("register.address")} path="address" errors=${errors}>
        <input value=${place.address} onInput=${set("address")} /></${Field}>
      <${Field} label=${t("register.area_type")} path="area_type" errors=${errors}>
        <select value=${place.area_type} onChange=${set("area_type")}>
          <option value="rural">${t("area.rural")}</option><option value="urban">${t("area.urban")}</option>
        </select></${Field}>
      <${Field} label=${t("register.idpoor_level")} path="idpoor/level" errors=${errors}>
        <select value=${place.idpoor_level} onChange=${set("idpoor_level")}>
          <option value="">${t("register.idpoor_none")}</option><option value="1">1</option><option value="2">2</option>
        </select></${Field}>
      <${Field} label=${t("register.idpoor_card")} path="idpoor/card_number" errors=${errors}>
        <input value=${place.idpoor_card} onInput=${set("idpoor_card")} disabled=${!place.idpoor_level} /></${Field}>
    </div>`;
}

function MemberForm({ member, index, setMember, remove, errors }) {
  const path = (key) => `members/${index}/${key}`;
  const set = (key) => (e) => setMember({ ...member, [key]: e.target.value });
  const invalid = (key) => (errors[`#/${path(key)}`] ? "true" : undefined);
  const title = index === 0 ? t("register.head") : t("register.member").replace("{n}", index + 1);
  return html`
    <fieldset class="member" data-member=${index}>
      <legend>${title}</legend>
      <div class="grid2">
        <${Field} label=${t("person.family_name")} path=${path("family_name")} errors=${errors}>
          <input value=${member.family_name} onInput=${set("family_name")} required aria-invalid=${invalid("family_name")}
                 name=${`family_name_${index}`} /></${Field}>
        <${Field} label=${t("person.given_name")} path=${path("given_name")} errors=${errors}>
          <input value=${member.given_name} onInput=${set("given_name")} required aria-invalid=${invalid("given_name")}
                 name=${`given_name_${index}`} /></${Field}>
        <${Field} label=${t("person.sex")} path=${path("sex")} errors=${errors}>
          <select value=${member.sex} onChange=${set("sex")} required name=${`sex_${index}`}>
            <option value="">—</option>
            ${SEXES.map((s) => html`<option value=${s}>${t(`sex.${s}`)}</option>`)}
          </select></${Field}>
        <${Field} label=${t("person.relationship")} path=${path("relationship")} errors=${errors}>
          <select value=${member.relationship} onChange=${set("relationship")} disabled=${index === 0} name=${`relationship_${index}`}>
            ${RELATIONSHIPS.filter((r) => (index === 0 ? r === "head" : r !== "head"))
              .map((r) => html`<option value=${r}>${t(`relationship.${r}`)}</option>`)}
          </select></${Field}>
        <${Field} label=${t("person.birth_date")} path=${path("birth_date")} errors=${errors}>
          <input type="date" value=${member.birth_date} onInput=${set("birth_date")} aria-invalid=${invalid("birth_date")}
                 name=${`birth_date_${index}`} /></${Field}>
        <${Field} label=${t("person.birth_year")} path=${path("birth_year")} errors=${errors}>
          <input type="number" min="1900" max="2100" value=${member.birth_year} onInput=${set("birth_year")}
                 required=${!member.birth_date} disabled=${Boolean(member.birth_date)} name=${`birth_year_${index}`} /></${Field}>
        <${Field} label=${t("person.national_id")} path=${path("national_id")} errors=${errors}>
          <input value=${member.national_id} onInput=${set("national_id")} aria-invalid=${invalid("national_id")}
                 name=${`national_id_${index}`} /></${Field}>
        <${Field} label=${t("person.phone")} path=${path("phone")} errors=${errors}>
          <input type="tel" value=${member.phone} onInput=${set("phone")} aria-invalid=${invalid("phone")}
                 name=${`phone_${index}`} /></${Field}>
      </div>
      <fieldset>
        <legend>${t("wg.title")}</legend>
        <div class="grid2">
          ${WG_DOMAINS.map((domain) => html`
            <label>${t(`wg.${domain}`)}
              <select value=${member.disability[domain]} name=${`wg_${domain}_${index}`}
                      onChange=${(e) => setMember({ ...member, disability: { ...member.disability, [domain]: e.target.value } })}>
                ${LEVELS.map((level) => html`<option value=${level}>${t(`level.${level}`)}</option>`)}
              </select>
            </label>`)}
        </div>
      </fieldset>
      ${index > 0 && html`<button type="button" onClick=${remove}>${t("register.remove_member")}</button>`}
    </fieldset>`;
}

function MembersStep({ draft, update, errors }) {
  const setMembers = (members) => update({ ...draft, members });
  return html`
    ${draft.members.map((member, index) => html`
      <${MemberForm} key=${index} member=${member} index=${index} errors=${errors}
        setMember=${(m) => setMembers(draft.members.map((old, i) => (i === index ? m : old)))}
        remove=${() => setMembers(draft.members.filter((_, i) => i !== index))} />`)}
    <button type="button" onClick=${() => setMembers([...draft.members, newMember("child")])}
            data-testid="add-member">${t("register.add_member")}</button>`;
}

function ConsentStep({ draft, update, errors }) {
  const consent = draft.consent;
  const set = (next) => update({ ...draft, consent: { ...consent, ...next } });
  const toggle = (purpose) => (e) => set({ purposes: e.target.checked
    ? [...consent.purposes, purpose] : consent.purposes.filter((p) => p !== purpose) });
  return html`
    <p>${t("consent.read_out")}</p>
    <fieldset>
      <legend>${t("consent.purposes")}</legend>
      ${PURPOSES.map((purpose) => html`
        <label class="inline">
          <input type="checkbox" checked=${consent.purposes.includes(purpose)} onChange=${toggle(purpose)}
                 disabled=${purpose === "registry"} name=${`purpose_${purpose}`} />
          <span><strong>${t(`purpose.${purpose}`)}</strong> — ${t(`purpose.${purpose}.text`)}</span>
        </label>`)}
      ${errors["#/consent/purposes"] && html`<p class="field-error">${errors["#/consent/purposes"]}</p>`}
    </fieldset>
    <div class="grid2">
      <${Field} label=${t("consent.given_by")} path="consent/given_by" errors=${errors}>
        <input value=${consent.given_by} placeholder=${headName(draft)} onInput=${(e) => set({ given_by: e.target.value })} /></${Field}>
      <${Field} label=${t("consent.method")} path="consent/method" errors=${errors}>
        <select value=${consent.method} onChange=${(e) => set({ method: e.target.value })}>
          ${METHODS.map((m) => html`<option value=${m}>${t(`method.${m}`)}</option>`)}
        </select></${Field}>
    </div>`;
}

function ReviewStep({ draft }) {
  const { place } = draft;
  return html`
    <dl class="facts">
      <div><dt>${t("register.village")}</dt><dd>${place.village_label}</dd></div>
      <div><dt>${t("register.address")}</dt><dd>${place.address}</dd></div>
      <div><dt>${t("register.area_type")}</dt><dd>${t(`area.${place.area_type}`)}</dd></div>
      <div><dt>${t("register.idpoor_level")}</dt><dd>${place.idpoor_level || t("register.idpoor_none")} ${place.idpoor_card}</dd></div>
    </dl>
    <table>
      <caption class="hint">${t("register.members")}</caption>
      <thead><tr><th>${t("person.name")}</th><th>${t("person.sex")}</th><th>${t("person.relationship")}</th>
        <th>${t("person.birth")}</th><th>${t("person.national_id")}</th><th>${t("wg.title")}</th></tr></thead>
      <tbody>
        ${draft.members.map((m, i) => html`<tr key=${i}>
          <td>${m.family_name} ${m.given_name}</td><td>${m.sex && t(`sex.${m.sex}`)}</td>
          <td>${t(`relationship.${m.relationship}`)}</td><td>${m.birth_date ? date(m.birth_date) : m.birth_year}</td><td>${m.national_id}</td>
          <td>${WG_DOMAINS.filter((d) => m.disability[d] !== "none").map((d) => `${t(`wg.${d}.short`)}: ${t(`level.${m.disability[d]}`)}`).join("; ") || "—"}</td>
        </tr>`)}
      </tbody>
    </table>
    <p>${t("consent.purposes")}: ${draft.consent.purposes.map((p) => t(`purpose.${p}`)).join(", ")}
      (${t(`method.${draft.consent.method}`)}, ${draft.consent.given_by || headName(draft)})</p>`;
}

// What the API found before saving: likely duplicates (the clerk says same or different person) or
// unlikely facts (the clerk checks them with the client).
function Decision({ problem, draft, confirm }) {
  if (problem.is("possible-duplicate")) {
    return html`
      <div class="card notice" role="alert" data-testid="duplicates">
        <h2>${t("duplicate.title")}</h2>
        ${problem.body.duplicates.map((flag) => {
          const index = Number(flag.member.split("/")[2]);
          const member = draft.members[index] || {};
          return html`<div key=${flag.member}>
            <p>${t("duplicate.member").replace("{name}", `${member.family_name} ${member.given_name}`)}</p>
            <ul>${flag.candidates.map((c) => html`<li key=${c.person_id}>
              <strong>${c.family_name} ${c.given_name}</strong> ${c.birth_date || c.birth_year}
              — ${t("duplicate.matched")}: ${c.matched_fields.map((f) => t(`field.${f}`)).join(", ")}
              <button type="button" onClick=${() => go(`#/household/${c.household_id}`)}>${t("duplicate.same")}</button>
            </li>`)}</ul></div>`;
        })}
        <button type="button" class="primary" onClick=${() => confirm({ new: true })}>${t("duplicate.different")}</button>
      </div>`;
  }
  if (problem.is("unlikely-facts")) {
    return html`
      <div class="card notice" role="alert" data-testid="unlikely">
        <h2>${t("unlikely.title")}</h2>
        <ul>${problem.body.warnings.map((w) => html`<li key=${w.code}>${w.detail || w.code}</li>`)}</ul>
        <button type="button" class="primary" onClick=${() => confirm({ unlikely: true })}>${t("unlikely.confirm")}</button>
      </div>`;
  }
  return null;
}

export function Register() {
  const [draft, setDraft] = useState(loadDraft);
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const confirmed = useRef({});
  const errors = fieldErrors(problem);
  if (problem?.body?.field && problem.body.detail) errors[problem.body.field] = problem.body.detail;

  const update = (next) => {
    setDraft(next);
    localStorage.setItem(DRAFT, JSON.stringify(next));
  };
  const toStep = (step) => update({ ...draft, step });

  async function save(confirm = {}) {
    confirmed.current = { ...confirmed.current, ...confirm };
    setBusy(true);
    // One Idempotency-Key per body, kept with the draft: a save whose answer was lost (the server went
    // down after storing it) and is sent again replays the first answer instead of registering twice.
    const body = requestBody(draft, confirmed.current);
    const sent = JSON.stringify(body);
    const key = draft.sent?.body === sent ? draft.sent.key : crypto.randomUUID();
    const current = { ...draft, sent: { body: sent, key } };
    update(current);
    try {
      const household = await api("POST", "/households", { body, headers: { "Idempotency-Key": key } });
      localStorage.removeItem(DRAFT);
      go(`#/household/${household.id}`);
    } catch (error) {
      setProblem(error);
      const pointers = Object.keys(fieldErrors(error)).concat(error?.body?.field ? [error.body.field] : []);
      if (pointers.length) update({ ...current, step: Math.min(...pointers.map(stepOf)) });
    } finally {
      setBusy(false);
    }
  }

  function next(event) {
    event.preventDefault();
    if (draft.step === 0 && !draft.place.village_code) {
      setProblem(new Problem(422, { errors: [{ pointer: "#/village_code", detail: t("register.village_required") }] }));
      return;
    }
    setProblem(null);
    if (draft.step < STEPS.length - 1) toStep(draft.step + 1);
    else save();
  }
  function onKeyDown(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      if (draft.step > 0) toStep(draft.step - 1);
      else go("#/");
    }
  }
  function discard() {
    localStorage.removeItem(DRAFT);
    confirmed.current = {};
    setProblem(null);
    setDraft(newDraft());
  }

  const Step = [PlaceStep, MembersStep, ConsentStep, ReviewStep][draft.step];
  const showProblem = problem && !(problem instanceof Problem && (problem.is("possible-duplicate") || problem.is("unlikely-facts")
    || problem.status === 422 || problem.body?.field));
  return html`
    <section>
      <h1 tabindex="-1">${t("register.title")}</h1>
      <ol class="steps">
        ${STEPS.map((step, i) => html`<li aria-current=${i === draft.step ? "step" : undefined}>${i + 1}. ${t(`register.step.${step}`)}</li>`)}
      </ol>
      <form onSubmit=${next} onKeyDown=${onKeyDown} novalidate=${draft.step === 3} data-step=${STEPS[draft.step]}>
        <h2>${t(`register.step.${STEPS[draft.step]}`)}</h2>
        ${problem?.status === 422 && html`<p class="error" role="alert">${t("register.fix_fields")}</p>`}
        <${Step} draft=${draft} update=${update} errors=${errors} />
        ${problem instanceof Problem && draft.step === 3 && html`<${Decision} problem=${problem} draft=${draft} confirm=${save} />`}
        ${showProblem && html`<${ErrorNote} error=${problem} />`}
        ${problem instanceof Unreachable && html`<p class="hint">${t("register.kept")}</p>`}
        <div class="actions">
          ${draft.step > 0 && html`<button type="button" onClick=${() => toStep(draft.step - 1)}>${t("register.back")}</button>`}
          <button type="submit" class="primary" disabled=${busy} data-testid="next">
            ${draft.step === STEPS.length - 1 ? t("register.save") : t("register.next")}</button>
          <button type="button" onClick=${discard}>${t("register.discard")}</button>
        </div>
      </form>
    </section>`;
}
