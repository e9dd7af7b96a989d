// Browsing: the searches of patients and studies (one page at a time, through /tools/find with
// Limit and Since), and the pages of a patient, a study, a series and an instance.

import { get, post, url } from "./api.js";
import { resourceActions } from "./actions.js";
import { dicomDate, h, replace, table } from "./dom.js";

export const PAGE_SIZE = 50;
const MODALITIES = ["", "CR", "CT", "DX", "ES", "IO", "MG", "MR", "NM", "OT", "PT", "RF", "SC", "SR", "US", "XA"];

export const LEVELS = {
  patient: { plural: "patients", title: "Patient", parentKey: null, child: "studies" },
  study: { plural: "studies", title: "Study", parentKey: "ParentPatient", child: "series" },
  series: { plural: "series", title: "Series", parentKey: "ParentStudy", child: "instances" },
  instance: { plural: "instances", title: "Instance", parentKey: "ParentSeries", child: null },
};
const PARENT_LEVEL = { study: "patient", series: "study", instance: "series" };

/** A match anywhere in the field, unless the user wrote wildcards of their own. */
export function containing(value) {
  const text = value.trim();
  if (!text) return "";
  return /[*?]/.test(text) ? text : `*${text}*`;
}

/** A DICOM date range ("20240101-20241231", open at either end) from two <input type=date> values. */
export function dateRange(from, to) {
  const compact = (value) => (value || "").replaceAll("-", "");
  if (!from && !to) return "";
  return `${compact(from)}-${compact(to)}`;
}

function label(id, text, control) {
  return h("label", { for: id }, h("span", {}, text), control);
}

function pager(page, hasNext, go, shown) {
  const first = page * PAGE_SIZE + 1;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", id: "page-previous", disabled: page === 0, onclick: () => go(page - 1) }, "← Previous"),
    h("span", { class: "muted", id: "page-range" }, shown ? `${first}–${first + shown - 1}` : "none"),
    h("button", { type: "button", id: "page-next", disabled: !hasNext, onclick: () => go(page + 1) }, "Next →"));
}

/** One page of /tools/find: the items and whether another page follows (asks for one more). */
async function findPage(level, query, page) {
  const answer = await post("tools/find", {
    Level: level, Query: query, Expand: true, Limit: PAGE_SIZE + 1, Since: page * PAGE_SIZE,
  });
  return { items: answer.slice(0, PAGE_SIZE), hasNext: answer.length > PAGE_SIZE };
}

function searchForm(fields, params, onSearch) {
  const inputs = {};
  const controls = fields.map(([key, text, type]) => {
    const id = `search-${key}`;
    let control;
    if (type === "modality") {
      control = h("select", { id, name: key }, MODALITIES.map((m) => h("option", { value: m }, m || "any")));
      control.value = params.get(key) || "";
    } else {
      control = h("input", { id, name: key, type, value: params.get(key) || "", autocomplete: "off" });
    }
    inputs[key] = control;
    return label(id, text, control);
  });
  const form = h("form", { class: "search", role: "search" }, controls,
    h("div", { class: "buttons" },
      h("button", { type: "submit", class: "primary", id: "search-submit" }, "Search"),
      h("button", { type: "reset", id: "search-clear" }, "Clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, input] of Object.entries(inputs)) if (input.value.trim()) next.set(key, input.value.trim());
    onSearch(next);
  });
  form.addEventListener("reset", () => setTimeout(() => onSearch(new URLSearchParams())));
  return form;
}

function navigateWith(section, params) {
  const query = params.toString();
  location.hash = `#/${section}${query ? `?${query}` : ""}`;
}

const resourceLink = (level, id, text) => h("a", { href: `#/${level}/${id}` }, text || "(no name)");

export async function studiesPage(main, params) {
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  const query = {};
  if (params.get("name")) query.PatientName = containing(params.get("name"));
  if (params.get("id")) query.PatientID = containing(params.get("id"));
  if (params.get("accession")) query.AccessionNumber = containing(params.get("accession"));
  if (params.get("description")) query.StudyDescription = containing(params.get("description"));
  const range = dateRange(params.get("from"), params.get("to"));
  if (range) query.StudyDate = range;
  if (params.get("modality")) query.ModalitiesInStudy = params.get("modality");
  const results = h("div", { id: "results", "aria-busy": "true" }, h("p", {}, "Searching…"));
  replace(main,
    h("h1", {}, "Studies"),
    searchForm([
      ["name", "Patient name", "search"], ["id", "Patient ID", "search"], ["accession", "Accession", "search"],
      ["description", "Description", "search"], ["from", "Study date from", "date"], ["to", "to", "date"],
      ["modality", "Modality", "modality"],
    ], params, (next) => navigateWith("studies", next)),
    results);
  const { items, hasNext } = await findPage("Study", query, page);
  const go = (target) => {
    const next = new URLSearchParams(params);
    next.set("page", String(target));
    navigateWith("studies", next);
  };
  replace(results,
    table([
      { label: "Patient", cell: (s) => resourceLink("study", s.ID, s.PatientMainDicomTags.PatientName), sort: (s) => s.PatientMainDicomTags.PatientName },
      { label: "Patient ID", cell: (s) => s.PatientMainDicomTags.PatientID || "", sort: (s) => s.PatientMainDicomTags.PatientID },
      { label: "Date", cell: (s) => dicomDate(s.MainDicomTags.StudyDate), sort: (s) => s.MainDicomTags.StudyDate },
      { label: "Description", cell: (s) => s.MainDicomTags.StudyDescription || "", sort: (s) => s.MainDicomTags.StudyDescription },
      { label: "Accession", cell: (s) => s.MainDicomTags.AccessionNumber || "", sort: (s) => s.MainDicomTags.AccessionNumber },
      { label: "Series", cell: (s) => String(s.Series.length), sort: (s) => s.Series.length },
    ], items, { id: "studies-table", empty: "No study matches." }),
    pager(page, hasNext, go, items.length));
  results.setAttribute("aria-busy", "false");
}

export async function patientsPage(main, params) {
  const page = Math.max(0, parseInt(params.get("page") || "0", 10) || 0);
  const query = {};
  if (params.get("name")) query.PatientName = containing(params.get("name"));
  if (params.get("id")) query.PatientID = containing(params.get("id"));
  const results = h("div", { id: "results", "aria-busy": "true" }, h("p", {}, "Searching…"));
  replace(main, h("h1", {}, "Patients"),
    searchForm([["name", "Patient name", "search"], ["id", "Patient ID", "search"]], params,
      (next) => navigateWith("patients", next)),
    results);
  const { items, hasNext } = await findPage("Patient", query, page);
  const go = (target) => {
    const next = new URLSearchParams(params);
    next.set("page", String(target));
    navigateWith("patients", next);
  };
  replace(results,
    table([
      { label: "Name", cell: (p) => resourceLink("patient", p.ID, p.MainDicomTags.PatientName), sort: (p) => p.MainDicomTags.PatientName },
      { label: "Patient ID", cell: (p) => p.MainDicomTags.PatientID || "", sort: (p) => p.MainDicomTags.PatientID },
      { label: "Birth date", cell: (p) => dicomDate(p.MainDicomTags.PatientBirthDate), sort: (p) => p.MainDicomTags.PatientBirthDate },
      { label: "Sex", cell: (p) => p.MainDicomTags.PatientSex || "", sort: (p) => p.MainDicomTags.PatientSex },
      { label: "Studies", cell: (p) => String(p.Studies.length), sort: (p) => p.Studies.length },
    ], items, { id: "patients-table", empty: "No patient matches." }),
    pager(page, hasNext, go, items.length));
  results.setAttribute("aria-busy", "false");
}

/** A short name for a resource, for titles and breadcrumbs. */
export function resourceName(level, resource) {
  const tags = resource.MainDicomTags || {};
  if (level === "patient") return tags.PatientName || tags.PatientID || "Patient";
  if (level === "study") return tags.StudyDescription || dicomDate(tags.StudyDate) || tags.AccessionNumber || "Study";
  if (level === "series") return [tags.Modality, tags.SeriesDescription || (tags.SeriesNumber ? `#${tags.SeriesNumber}` : "")].filter(Boolean).join(" ") || "Series";
  return tags.InstanceNumber ? `Instance #${tags.InstanceNumber}` : "Instance";
}

async function breadcrumbs(level, resource) {
  const chain = [];
  let current = level;
  let item = resource;
  while (LEVELS[current].parentKey) {
    const parentLevel = PARENT_LEVEL[current];
    const parent = await get(`${LEVELS[parentLevel].plural}/${item[LEVELS[current].parentKey]}`);
    chain.unshift(h("li", {}, resourceLink(parentLevel, parent.ID, `${LEVELS[parentLevel].title}: ${resourceName(parentLevel, parent)}`)));
    current = parentLevel;
    item = parent;
  }
  return h("nav", { "aria-label": "Breadcrumb", class: "breadcrumb" },
    h("ol", {}, h("li", {}, h("a", { href: "#/studies" }, "Studies")), chain));
}

function tagList(tags) {
  return h("dl", { class: "tags-summary" },
    Object.entries(tags).map(([name, value]) => [h("dt", {}, name), h("dd", {}, /Date$/.test(name) ? dicomDate(value) : String(value))]));
}

const CHILD_COLUMNS = {
  studies: [
    { label: "Date", cell: (s) => resourceLink("study", s.ID, dicomDate(s.MainDicomTags.StudyDate) || "(no date)"), sort: (s) => s.MainDicomTags.StudyDate },
    { label: "Description", cell: (s) => s.MainDicomTags.StudyDescription || "", sort: (s) => s.MainDicomTags.StudyDescription },
    { label: "Accession", cell: (s) => s.MainDicomTags.AccessionNumber || "", sort: (s) => s.MainDicomTags.AccessionNumber },
    { label: "Series", cell: (s) => String(s.Series.length), sort: (s) => s.Series.length },
  ],
  series: [
    { label: "Number", cell: (s) => resourceLink("series", s.ID, s.MainDicomTags.SeriesNumber || "(none)"), sort: (s) => Number(s.MainDicomTags.SeriesNumber) || 0 },
    { label: "Modality", cell: (s) => s.MainDicomTags.Modality || "", sort: (s) => s.MainDicomTags.Modality },
    { label: "Description", cell: (s) => s.MainDicomTags.SeriesDescription || "", sort: (s) => s.MainDicomTags.SeriesDescription },
    { label: "Body part", cell: (s) => s.MainDicomTags.BodyPartExamined || "", sort: (s) => s.MainDicomTags.BodyPartExamined },
    { label: "Instances", cell: (s) => String(s.Instances.length), sort: (s) => s.Instances.length },
  ],
  instances: [
    { label: "Preview", cell: (i) => h("a", { href: `#/instance/${i.ID}`, "aria-label": `Open instance ${i.MainDicomTags.InstanceNumber || ""}` }, h("img", { class: "thumb", loading: "lazy", alt: "", src: url(`instances/${i.ID}/preview`) })) },
    { label: "Number", cell: (i) => resourceLink("instance", i.ID, i.MainDicomTags.InstanceNumber || "(none)"), sort: (i) => Number(i.MainDicomTags.InstanceNumber) || 0 },
    { label: "SOP Instance UID", cell: (i) => i.MainDicomTags.SOPInstanceUID || "", sort: (i) => i.MainDicomTags.SOPInstanceUID },
    { label: "Size", cell: (i) => `${Math.round((i.FileSize || 0) / 1024)} KB`, sort: (i) => i.FileSize },
  ],
};
// A series may hold thousands of instances: the page shows them this many at a time.
const INSTANCES_SHOWN = 100;

export async function resourcePage(main, level, id) {
  const config = LEVELS[level];
  const resource = await get(`${config.plural}/${id}`);
  const title = `${config.title}: ${resourceName(level, resource)}`;
  const summary = { ...(resource.PatientMainDicomTags || {}), ...resource.MainDicomTags };
  const content = [
    await breadcrumbs(level, resource),
    h("h1", { id: "resource-title" }, title),
    resourceActions(level, resource),
    h("section", { "aria-labelledby": "summary-title" }, h("h2", { id: "summary-title", class: "visually-hidden" }, "Main tags"), tagList(summary)),
  ];
  if (config.child) {
    const children = await get(`${config.plural}/${id}/${config.child}`);
    const shown = level === "series" ? children.slice(0, INSTANCES_SHOWN) : children;
    content.push(h("h2", {}, `${config.child[0].toUpperCase()}${config.child.slice(1)} (${children.length})`),
      table(CHILD_COLUMNS[config.child], shown, { id: `${config.child}-table` }));
    if (shown.length < children.length) {
      const more = h("button", { type: "button", id: "show-more" }, `Show all ${children.length}`);
      more.addEventListener("click", () => more.replaceWith(table(CHILD_COLUMNS[config.child], children, { id: `${config.child}-all` })));
      content.push(more);
    }
  } else {
    content.push(await instanceDetails(id));
  }
  replace(main, content);
}

async function instanceDetails(id) {
  const tags = await get(`instances/${id}/tags`);
  const rows = [];
  flattenTags(tags, 0, rows);
  const filter = h("input", { id: "tag-filter", type: "search", placeholder: "tag, name or value", autocomplete: "off" });
  const body = h("tbody");
  const render = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = needle ? rows.filter((row) => row.text.includes(needle)) : rows;
    replace(body, shown.map((row) => h("tr", { class: row.depth ? "nested" : null },
      h("td", { class: "tag" }, `${"› ".repeat(row.depth)}${row.tag}`), h("td", {}, row.name), h("td", { class: "value" }, row.value))));
  };
  filter.addEventListener("input", render);
  render();
  const preview = h("figure", { class: "preview" },
    h("img", { src: url(`instances/${id}/preview`), alt: "Preview of the instance's first frame", id: "instance-preview" }));
  preview.querySelector("img").addEventListener("error", () => replace(preview, h("p", { class: "muted" }, "No preview for this instance.")));
  return h("div", { class: "instance" }, preview,
    h("section", { "aria-labelledby": "tags-title", class: "tags" },
      h("h2", { id: "tags-title" }, "Tags"),
      label("tag-filter", "Filter", filter),
      h("table", { class: "grid", id: "tags-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tag"), h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Value"))),
        body)));
}

// Values longer than this are cut in the table (the file itself is one click away).
const VALUE_SHOWN = 200;

function flattenTags(tags, depth, rows) {
  for (const [tag, item] of Object.entries(tags)) {
    let value = "";
    if (item.Type === "String") value = item.Value.length > VALUE_SHOWN ? `${item.Value.slice(0, VALUE_SHOWN)}…` : item.Value;
    else if (item.Type === "Sequence") value = `${item.Value.length} item(s)`;
    else value = `(${item.Type.toLowerCase()})`;
    rows.push({ tag, name: item.Name || "", value, depth, text: `${tag} ${item.Name} ${value}`.toLowerCase() });
    if (item.Type === "Sequence") item.Value.forEach((child) => flattenTags(child, depth + 1, rows));
  }
}

