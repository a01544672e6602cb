// The screen in view, from the address's hash (#/, #/register, #/household/<id>, #/queue, #/audit): the
// browser's Back works and a reload stays on the screen.
import { signal } from "../shared/ui.js";

export const route = signal(location.hash);
addEventListener("hashchange", () => { route.value = location.hash; });

export function go(hash) {
  location.hash = hash;
}
