// Small helpers that build the page from plain DOM nodes: no markup strings, so no value read
// from the node (a patient's name, an error message) is ever parsed as HTML.

/** An element: h("a", {href: "#/x", class: "link", onclick: fn}, "text", child, ...). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "value") {
      element.value = value;
    } else if (name === "checked") {
      element.checked = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Children appended: strings and numbers as text, arrays flattened, null and false skipped. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all the content of ``parent``. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A table: ``columns`` [{label, cell(row) -> node|string, sort(row) -> key}], one row per item. */
export function table(columns, rows, { caption, id, empty = "Nothing to show." } = {}) {
  const head = h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column.label)));
  const body = h("tbody");
  const render = (items) => {
    if (items.length === 0) {
      replace(body, h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
      return;
    }
    replace(body, items.map((row) => h("tr", {}, columns.map((column) => h("td", {}, column.cell(row))))));
  };
  // Sorting acts on the rows shown (one page of a search): each sortable header is a button.
  columns.forEach((column, index) => {
    if (!column.sort) return;
    const th = head.children[index];
    let ascending = true;
    const button = h("button", { type: "button", class: "sort", title: `Sort this page by ${column.label}` }, column.label);
    button.addEventListener("click", () => {
      const key = column.sort;
      const sorted = [...rows].sort((a, b) => compare(key(a), key(b)) * (ascending ? 1 : -1));
      for (const other of head.querySelectorAll("th")) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      ascending = !ascending;
      render(sorted);
    });
    replace(th, button);
  });
  render(rows);
  return h("table", { class: "grid", id }, caption ? h("caption", {}, caption) : null, h("thead", {}, head), body);
}

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a ?? "").localeCompare(String(b ?? ""));
}

/** A progress bar readable by assistive technology (and by the tests): aria-valuenow is 0..100. */
export function progressBar(label) {
  const fill = h("span", { class: "fill" });
  const bar = h("span", {
    class: "progress", role: "progressbar", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0,
  }, fill);
  bar.set = (percent) => {
    const value = Math.max(0, Math.min(100, Math.round(percent)));
    bar.setAttribute("aria-valuenow", value);
    fill.style.width = `${value}%`;
  };
  return bar;
}

/** A short message at the bottom of the page, read out by screen readers. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 10000 : 4000);
}

/** "2024-01-31" from a DICOM date (YYYYMMDD), else the value as it is. */
export function dicomDate(value) {
  return /^\d{8}$/.test(value || "") ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value || "";
}

/** "2024-01-31 12:00:05" from Orthanc's timestamp (20240131T120005[.ffffff]), in UTC. */
export function orthancTime(value) {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(value || "");
  return match ? `${match[1]}-${match[2]}-${match[3]} ${match[4]}:${match[5]}:${match[6]}` : "";
}

/** A Date from Orthanc's timestamp (UTC). */
export function parseOrthancTime(value) {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(value || "");
  return match ? new Date(Date.UTC(+match[1], match[2] - 1, +match[3], +match[4], +match[5], +match[6])) : null;
}

/** "1.5 MB" */
export function bytes(count) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(count) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** "3 min 5 s" */
export function duration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}
