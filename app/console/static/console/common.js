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

export function date(value) {
  if (!value) return "";
  const when = new Date(value.length === 10 ? `${value}T00:00:00` : value);
  return when.toLocaleDateString(language.value === "km" ? "km-KH" : language.value, { dateStyle: "medium" });
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
