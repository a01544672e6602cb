// The clerk's console (issue 16). For now a greeting that proves the machinery: the vendored view layer,
// the catalogues and the language switch, the shipped Khmer font, the Content-Security-Policy.
import { effect, html, render } from "../shared/ui.js";
import { startI18n, t } from "../shared/i18n.js";
import { LanguageSwitcher } from "../shared/language-switcher.js";

function Console() {
  return html`
    <header class="bar">
      <span class="brand">Guichet</span>
      <${LanguageSwitcher} />
    </header>
    <main>
      <h1>${t("console.welcome")}</h1>
      <p>${t("console.coming")}</p>
    </main>`;
}

await startI18n(new URL("./i18n/", import.meta.url));
effect(() => { document.title = t("console.title"); });
render(html`<${Console} />`, document.getElementById("app"));
