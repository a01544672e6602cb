// Languages and message catalogues, shared by the console and the dashboard. Khmer first; English and French
// one click away. The choice persists in this browser; API calls send it as Accept-Language.
import { signal } from "./ui.js";

export const LANGUAGES = { km: "ខ្មែរ", en: "English", fr: "Français" };
export const DEFAULT_LANGUAGE = "km";
const STORED = "guichet.language";
const SHARED = new URL("./i18n/", import.meta.url);

export const language = signal(DEFAULT_LANGUAGE);
const messages = signal({});
let catalogues = [SHARED];

// Loads the shared catalogue and the app's (a directory URL holding km.json, en.json and fr.json) in the
// language chosen before, and keeps both for later switches.
export async function startI18n(appCatalogues) {
  catalogues = [SHARED, appCatalogues];
  const stored = localStorage.getItem(STORED);
  await setLanguage(Object.hasOwn(LANGUAGES, stored ?? "") ? stored : DEFAULT_LANGUAGE);
}

// The page switches only once the new catalogues are in, so it never shows a mix of two languages.
export async function setLanguage(code) {
  const loaded = await Promise.all(catalogues.map(async (base) => {
    const response = await fetch(new URL(`${code}.json`, base));
    if (!response.ok) throw new Error(`catalogue ${code}.json of ${base}: HTTP ${response.status}`);
    return response.json();
  }));
  messages.value = Object.assign({}, ...loaded);
  language.value = code;
  document.documentElement.lang = code;
  localStorage.setItem(STORED, code);
}

// The message for a key in the current language. A missing one is logged as an error (the browser tests
// fail on console errors) and shows as its key.
export function t(key) {
  const text = messages.value[key];
  if (text === undefined) {
    console.error(`untranslated: ${key} (${language.value})`);
    return key;
  }
  return text;
}

// Whether the catalogue has a key: for values that come from the server's data (a scheme's fact names),
// where a missing translation shows the value itself rather than an error.
export function has(key) {
  return Object.hasOwn(messages.value, key);
}
