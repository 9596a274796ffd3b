// The page's DOM helpers, shared by app.js and report.js.

export const $ = (id) => document.getElementById(id);

/** A new element: `attributes` (class, text, or any attribute; null, undefined and false left
 * out, true as an empty one), then its children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** A figure as the page shows it: integers with separators, others to 2 or 3 digits. */
export function formatValue(value) {
  if (Array.isArray(value)) return value.join(" → ");
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString("en") : value.toFixed(value < 1 ? 3 : 2);
  }
  return String(value);
}
