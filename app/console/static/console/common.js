// Small pieces shared by the console's screens.
import { html } from "../shared/ui.js";
import { language, t } from "../shared/i18n.js";
import { Problem, Unreachable } from "./api.js";

// A place by its Khmer name in Khmer, by its Latin name otherwise (codes mean nothing to a client).
export function placeName(km, latin) {
  return (language.value === "km" ? km || latin : latin || km) || "";
}

// A vocabulary value (sex, relationship, status...) in the clerk's language.
export const term = (kind, value) => (value === null || value === undefined ? "" : t(`${kind}.${value}`));

// Khmer dates are written with Khmer digits and month names, as receipts in Cambodia print them; browsers
// do not all carry the Khmer locale's data, so it is done here.
const KHMER_MONTHS = ["មករា", "កុម្ភៈ", "មីនា", "មេសា", "ឧសភា", "មិថុនា", "កក្កដា", "សីហា", "កញ្ញា", "តុលា", "វិច្ឆិកា", "ធ្នូ"];
const khmerDigits = (text) => String(text).replace(/[0-9]/g, (d) => String.fromCharCode(0x17e0 + Number(d)));

export function date(value) {
  if (!value) return "";
  const when = new Date(value.length === 10 ? `${value}T00:00:00` : value);
  if (language.value === "km") {
    return khmerDigits(`${when.getDate()} ${KHMER_MONTHS[when.getMonth()]} ${when.getFullYear()}`);
  }
  return when.toLocaleDateString(language.value, { dateStyle: "medium" });
}

// An error the whole screen should know about, in words the clerk can act on.
export function ErrorNote({ error }) {
  if (!error) return null;
  let text;
  if (error instanceof Unreachable) text = t("offline");
  else if (error instanceof Problem && error.status === 403) text = t("error.forbidden");
  else if (error instanceof Problem && error.status === 404) text = t("error.not_found");
  else if (error instanceof Problem) text = `${t("error.refused")} ${error.message}`;
  else text = t("error.unexpected");
  const fields = error instanceof Problem ? error.errors : [];
  return html`<div class="error" role="alert"><p>${text}</p>
    ${fields.length > 0 && html`<ul>${fields.map((f) => html`<li key=${f.pointer}>${f.pointer.replace(/^#\//, "")}: ${f.detail}</li>`)}</ul>`}</div>`;
}

// The API's per-field errors (problem+json `errors`, each with a JSON pointer such as
// "#/members/0/given_name") by pointer, for showing each beside its field.
export function fieldErrors(problem) {
  const found = {};
  for (const item of problem?.errors || []) {
    const pointer = item.pointer || "";
    found[pointer] = item.detail;
  }
  return found;
}
