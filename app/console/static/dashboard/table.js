// A table of figures with its caption and its exports. Suppressed cells read "suppressed", never 0.
import { html } from "../shared/ui.js";
import { t } from "../shared/i18n.js";
import { exportTable } from "./api.js";

// columns: [{code, label, numeric?, show?(value, row)}]; rows: arrays of raw values, one per column.
// A numeric cell whose value is null reads as suppressed when the row's `suppressed` column says so.
export function FigureTable({ caption, title, columns, rows, id }) {
  const suppressedAt = columns.findIndex((c) => c.code === "suppressed");
  const cell = (column, value, row) => {
    if (column.show) return column.show(value, row);
    if (column.numeric && value === null) {
      return suppressedAt >= 0 && row[suppressedAt] ? html`<span class="suppressed">${t("value.suppressed")}</span>` : t("value.none");
    }
    if (typeof value === "boolean") return value ? "✓" : "";
    return value ?? "";
  };
  if (!rows.length) return html`<p class="empty">${t("empty")}</p>`;
  return html`
    <div class="figures">
      <table id=${id}>
        <caption>${caption}</caption>
        <thead><tr>${columns.map((c) => html`<th scope="col">${c.label}</th>`)}</tr></thead>
        <tbody>${rows.map((row) => html`
          <tr>${columns.map((c, i) => i === 0
            ? html`<th scope="row">${cell(c, row[i], row)}</th>`
            : html`<td class=${c.numeric ? "number" : ""}>${cell(c, row[i], row)}</td>`)}</tr>`)}
        </tbody>
      </table>
      <div class="exports">
        <button type="button" onClick=${() => exportTable({ title, columns, rows }, "csv")}>${t("export.csv")}</button>
        <button type="button" onClick=${() => exportTable({ title, columns, rows }, "xlsx")}>${t("export.xlsx")}</button>
      </div>
    </div>`;
}
