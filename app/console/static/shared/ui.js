// The view layer for the console and the dashboard, imported from here only: updating a vendored library
// (scripts/vendor_js.py) changes the paths in this file and nowhere else.
import { h } from "../vendor/preact-11.2.0/preact.mjs";
import htm from "../vendor/htm-3.1.1/htm.mjs";

export { Fragment, h, render } from "../vendor/preact-11.2.0/preact.mjs";
export { useEffect, useMemo, useRef, useState } from "../vendor/preact-11.2.0/hooks.mjs";
export { batch, computed, effect, signal, useComputed, useSignal, useSignalEffect }
  from "../vendor/preact-signals-2.11.4/signals.mjs";

// JSX-like templates without a build step: html`<p class=${cls}>${text}</p>` (text is always escaped).
export const html = htm.bind(h);
