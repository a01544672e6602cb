import { html } from "../shared/ui.js";
export function Household() { return html`<h1 tabindex="-1">household</h1>`; }
