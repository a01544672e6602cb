import { html } from "./ui.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";

// One button per language, each named in its own language and script. The browser tests switch language
// through it (tests/browser/support.py): a button per language with data-language, and <html lang> set
// once the catalogues are in.
export function LanguageSwitcher() {
  return html`
    <div role="group" class="languages" aria-label=${t("language.label")}>
      ${Object.entries(LANGUAGES).map(([code, name]) => html`
        <button type="button" lang=${code} data-language=${code} aria-pressed=${String(language.value === code)}
                onClick=${() => setLanguage(code)}>${name}</button>`)}
    </div>`;
}
