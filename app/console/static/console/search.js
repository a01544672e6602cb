// Search first: one box for a name (Khmer or Latin), a national ID, a phone number or an IDPoor card
// number, results as the clerk types (debounced), Enter opens the first household.
import { html, useEffect, useRef, useState } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { get, query } from "./api.js";
import { go } from "./route.js";
import { ErrorNote, placeName } from "./common.js";

// Short: the clerk waits for the results; a stale answer is dropped when a newer one is asked for.
const DEBOUNCE_MS = 100;
const HAS_LETTER = /[\p{L}\u1780-\u17FF]/u;

// What the clerk typed decides what is asked: letters are a name; a number may be a national ID, a phone
// number or a card number, and all three are asked at once (each is one indexed lookup).
function searches(text) {
  if (HAS_LETTER.test(text) && !/\d/.test(text)) return [{ name: text }];
  if (/^[A-Za-z0-9-]{4,30}$/.test(text) || /^\+?[0-9][0-9 -]{5,18}$/.test(text)) {
    const asked = [{ national_id: text }, { idpoor_card: text }];
    if (/^\+?[0-9][0-9 -]{5,18}$/.test(text)) asked.push({ phone: text });
    return asked;
  }
  return [{ name: text }];
}

export async function searchHouseholds(text) {
  const pages = await Promise.all(searches(text).map((params) => get(`/households${query({ ...params, limit: 10 })}`)));
  const seen = new Set();
  const items = pages.flatMap((page) => page.items).filter((item) => !seen.has(item.id) && seen.add(item.id));
  const total = pages.length === 1 ? pages[0].total : items.length;
  return { items, total };
}

export function Search() {
  const [text, setText] = useState(sessionStorage.getItem("guichet.search") || "");
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  const asked = useRef(0);

  useEffect(() => {
    const term = text.trim();
    sessionStorage.setItem("guichet.search", text);
    if (term.length < 2) {
      setFound(null);
      return undefined;
    }
    const timer = setTimeout(async () => {
      const mine = ++asked.current;
      try {
        const result = await searchHouseholds(term);
        if (mine === asked.current) {
          setFound({ ...result, term });
          setError(null);
        }
      } catch (problem) {
        if (mine === asked.current) setError(problem);
      }
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text]);

  function onKeyDown(event) {
    if (event.key === "Enter" && found?.items.length) go(`#/household/${found.items[0].id}`);
    if (event.key === "Escape") setText("");
  }

  return html`
    <section class="search">
      <h1 tabindex="-1">${t("search.title")}</h1>
      <div class="search-row">
        <label class="grow">${t("search.label")}
          <input type="search" value=${text} onInput=${(e) => setText(e.target.value)} onKeyDown=${onKeyDown}
                 aria-describedby="search-hint" aria-controls="search-results" autocomplete="off" data-autofocus
                 data-testid="search" />
        </label>
        <a class="button" href="#/register">${t("search.register")}</a>
      </div>
      <p id="search-hint" class="hint">${t("search.hint")}</p>
      <${ErrorNote} error=${error} />
      <div id="search-results" aria-live="polite" data-answered=${found?.term}>
        ${found && html`
          <p class="hint">${found.items.length ? t("search.count").replace("{n}", found.total) : t("search.none")}</p>
          <ul class="results">
            ${found.items.map((item) => html`
              <li key=${item.id}>
                <a href=${`#/household/${item.id}`} class="result">
                  <strong>${item.head_name || t("household.no_head")}</strong>
                  <span>${item.head_national_id ? `${t("person.national_id")} ${item.head_national_id}` : ""}</span>
                  <span>${placeName(item.village_name_km, item.village_name) || item.village_code}</span>
                  <span>${t("household.size").replace("{n}", item.size)}</span>
                  ${item.idpoor_level && html`<span class="badge">${t("household.idpoor")} ${item.idpoor_level}</span>`}
                </a>
              </li>`)}
          </ul>`}
      </div>
    </section>`;
}
