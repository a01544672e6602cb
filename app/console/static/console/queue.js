import { html } from "../shared/ui.js";
export function Queue() { return html`<h1 tabindex="-1">queue</h1>`; }
