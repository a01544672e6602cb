// The clerk's console (issue 16): a client of the public API only (api.js). Screens by the address's hash,
// so that the browser's Back works and a reload stays on the screen: #/ search, #/register, #/household/<id>,
// #/queue, #/audit. Signed out, every address shows the sign-in.
import { effect, html, render, signal, useEffect } from "../shared/ui.js";
import { startI18n, t } from "../shared/i18n.js";
import { LanguageSwitcher } from "../shared/language-switcher.js";
import { Unreachable, me, offline, resume, sessionEnded, signOut } from "./api.js";
import { SignIn } from "./signin.js";
import { Search } from "./search.js";
import { Register } from "./register.js";
import { Household } from "./household.js";
import { CaseRedirect, Queue } from "./queue.js";
import { Print } from "./print.js";
import { Audit } from "./audit.js";
import { go, route } from "./route.js";

const starting = signal(true);

function Screen() {
  const [, name, id, more] = route.value.match(/^#\/([a-z]*)\/?([^/]*)\/?([^/]*)/) || [];
  useEffect(() => {
    // Focus the screen's heading (or its search box) when the screen changes, for keyboard users.
    const target = document.querySelector("[data-autofocus]") || document.querySelector("main h1");
    target?.focus();
    // When the search screen became usable, for bench/console.py (a User Timing mark, nothing sent).
    if (target?.dataset.testid === "search") performance.mark("guichet.search-usable");
  }, [name, id, more]);
  if (name === "register") return html`<${Register} />`;
  if (name === "household" && id) return html`<${Household} id=${id} key=${id} />`;
  if (name === "case" && id) return html`<${CaseRedirect} id=${id} key=${id} />`;
  if (name === "print" && more) return html`<${Print} kind=${id} id=${more} key=${more} />`;
  if (name === "queue") return html`<${Queue} />`;
  if (name === "audit") return html`<${Audit} />`;
  return html`<${Search} />`;
}

function Navigation() {
  const supervisor = ["supervisor", "admin"].includes(me.value.role);
  const current = (hash) => (route.value === hash || (hash === "#/" && !route.value.match(/^#\/[a-z]/)) ? "page" : undefined);
  return html`
    <nav aria-label=${t("nav.label")}>
      <a href="#/" aria-current=${current("#/")}>${t("nav.search")}</a>
      <a href="#/register" aria-current=${current("#/register")}>${t("nav.register")}</a>
      <a href="#/queue" aria-current=${current("#/queue")}>${t("nav.queue")}</a>
      ${supervisor && html`<a href="#/audit" aria-current=${current("#/audit")}>${t("nav.audit")}</a>`}
    </nav>`;
}

function Console() {
  const user = me.value;
  return html`
    <header class="bar">
      <span class="brand">Guichet</span>
      ${user && html`<${Navigation} />`}
      <div class="bar-end">
        ${user && html`<span class="who">${user.full_name || user.username} · ${t(`role.${user.role}`)}${user.office_code ? ` · ${user.office_code}` : ""}</span>
          <button type="button" class="link" onClick=${() => signOut().then(() => go("#/"))}>${t("signin.out")}</button>`}
        <${LanguageSwitcher} />
      </div>
    </header>
    ${offline.value && html`<p class="offline" role="alert">${t("offline")}</p>`}
    <main>
      ${starting.value ? html`<p>${t("loading")}</p>` : user ? html`<${Screen} />` : html`<${SignIn} ended=${sessionEnded.value} />`}
    </main>`;
}

// The session is renewed while the catalogues load: neither waits for the other.
const resumed = resume().catch((error) => {
  if (!(error instanceof Unreachable)) throw error;
});
await startI18n(new URL("./i18n/", import.meta.url));
effect(() => { document.title = t("console.title"); });
render(html`<${Console} />`, document.getElementById("app"));
await resumed;
starting.value = false;
