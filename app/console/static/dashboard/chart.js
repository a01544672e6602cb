// A line chart (vendored uPlot, drawn on a canvas) of monthly series. The table beside it holds the same
// figures for screen readers and for copying; the chart itself is an image with a name. Suppressed months
// are gaps, never zeros.
import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { html, useEffect, useRef } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { save } from "./api.js";

const COLOURS = ["#0b5cad", "#b3261e", "#1b7f3b", "#8a4b00", "#5b3fa0", "#00727a"];

export function TrendChart({ caption, name, labels, series }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(320, Math.min(900, box.current.clientWidth || 640));
    const options = {
      width, height: 260,
      scales: { x: { time: false } },
      axes: [{ values: (_, ticks) => ticks.map((i) => labels[i] ?? "") }, {}],
      series: [{ label: t("col.period"), value: (_, i) => labels[i] ?? "" },
        ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: false,
                                   points: { show: true, size: 6 } }))],
      legend: { show: true },
    };
    const data = [labels.map((_, i) => i), ...series.map((s) => s.values)];
    plot.current = new uPlot(options, data, box.current);
    return () => plot.current.destroy();
  }, [JSON.stringify(labels), JSON.stringify(series)]);
  const png = () => plot.current.ctx.canvas.toBlob((blob) => save(blob, `${name}.png`), "image/png");
  return html`
    <figure class="chart">
      <div ref=${box} role="img" aria-label=${caption}></div>
      <figcaption>${caption}
        <button type="button" onClick=${png}>${t("export.png")}</button>
      </figcaption>
    </figure>`;
}
