// Months and breakdown values as the dashboard and the office report show them.
import { t } from "../shared/i18n.js";

export function thisMonth() {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
}

// "YYYY-MM", `count` months before the given one.
export function monthsBack(month, count) {
  const [year, number] = month.split("-").map(Number);
  const index = year * 12 + (number - 1) - count;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, "0")}`;
}

export function monthEnd(month) {
  const [year, number] = month.split("-").map(Number);
  return `${month}-${String(new Date(Date.UTC(year, number, 0)).getUTCDate()).padStart(2, "0")}`;
}

// A breakdown's value in the reader's language (null: not recorded).
export function valueLabel(breakdown, value) {
  if (value === null || value === undefined || value === "null") return t("value.unknown");
  if (breakdown === "scheme") return String(value);
  return t(`${breakdown}.${value}`);
}
