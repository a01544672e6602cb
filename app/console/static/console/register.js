import { html } from "../shared/ui.js";
export function Register() { return html`<h1 tabindex="-1">register</h1>`; }
