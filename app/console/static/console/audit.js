import { html } from "../shared/ui.js";
export function Audit() { return html`<h1 tabindex="-1">audit</h1>`; }
