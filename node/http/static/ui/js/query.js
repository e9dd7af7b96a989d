// Query/Retrieve: a C-FIND at the study level on a declared modality, its answers, and a
// C-MOVE (or C-GET, as the modality is configured) of one answer or all of them to this node.

import { get, post } from "./api.js";
import { closeDialog, jobMonitor, openDialog } from "./actions.js";
import { dicomDate, h, replace, table, toast } from "./dom.js";
import { dateRange } from "./browse.js";

const FIELDS = [
  ["PatientName", "Patient name", "search"], ["PatientID", "Patient ID", "search"],
  ["AccessionNumber", "Accession", "search"], ["from", "Study date from", "date"], ["to", "to", "date"],
  ["ModalitiesInStudy", "Modality", "search"], ["StudyDescription", "Description", "search"],
];
// Asked for in every query, so that the answers can be shown in the table.
const RETURNED = ["PatientName", "PatientID", "StudyDate", "StudyDescription", "AccessionNumber", "ModalitiesInStudy", "StudyInstanceUID"];

export async function queryPage(main) {
  const modalities = await get("modalities");
  if (!modalities.length) {
    replace(main, h("h1", {}, "Query/Retrieve"),
      h("p", {}, "No DICOM modality is declared. Add one (DicomModalities in the configuration, or PUT /modalities/{name}) to query it."));
    return;
  }
  const modality = h("select", { id: "qr-modality" }, modalities.map((name) => h("option", { value: name }, name)));
  const inputs = {};
  const controls = FIELDS.map(([key, text, type]) => {
    inputs[key] = h("input", { id: `qr-${key}`, type, autocomplete: "off" });
    return h("label", { for: `qr-${key}` }, h("span", {}, text), inputs[key]);
  });
  const results = h("div", { id: "qr-results" });
  const form = h("form", { class: "search", role: "search" },
    h("label", { for: "qr-modality" }, h("span", {}, "Modality"), modality), controls,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "qr-submit" }, "Query")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = Object.fromEntries(RETURNED.map((name) => [name, ""]));
    for (const [key, input] of Object.entries(inputs)) {
      if (key !== "from" && key !== "to" && input.value.trim()) query[key] = input.value.trim();
    }
    const range = dateRange(inputs.from.value, inputs.to.value);
    if (range) query.StudyDate = range;
    replace(results, h("p", { "aria-busy": "true" }, "Querying…"));
    try {
      const created = await post(`modalities/${encodeURIComponent(modality.value)}/query`, { Level: "Study", Query: query });
      const answers = await get(`queries/${created.ID}/answers?expand&simplify`);
      showAnswers(results, created.ID, answers);
    } catch (error) {
      replace(results, h("p", { class: "error" }, `The query failed: ${error.message}`));
    }
  });
  replace(main, h("h1", {}, "Query/Retrieve"), form, results);
}

function retrieve(path, title) {
  return async () => {
    try {
      const answer = await post(path, { Asynchronous: true });
      openDialog(title, jobMonitor(answer.ID, (job, outcome) => replace(outcome,
        h("p", {}, "Retrieved. ", h("a", { href: "#/studies", onclick: closeDialog }, "See the studies")))));
    } catch (error) {
      toast(`The retrieve failed: ${error.message}`, "error");
    }
  };
}

function showAnswers(results, queryId, answers) {
  const rows = answers.map((answer, index) => ({ ...answer, index }));
  replace(results,
    h("div", { class: "section-head" }, h("h2", {}, `${answers.length} answer(s)`),
      answers.length ? h("button", { type: "button", id: "qr-retrieve-all", onclick: retrieve(`queries/${queryId}/retrieve`, "Retrieve all") }, "Retrieve all") : null),
    table([
      { label: "Patient", cell: (a) => a.PatientName || "", sort: (a) => a.PatientName },
      { label: "Patient ID", cell: (a) => a.PatientID || "", sort: (a) => a.PatientID },
      { label: "Date", cell: (a) => dicomDate(a.StudyDate), sort: (a) => a.StudyDate },
      { label: "Description", cell: (a) => a.StudyDescription || "", sort: (a) => a.StudyDescription },
      { label: "Accession", cell: (a) => a.AccessionNumber || "" },
      { label: "Modalities", cell: (a) => a.ModalitiesInStudy || "" },
      { label: "", cell: (a) => h("button", { type: "button", onclick: retrieve(`queries/${queryId}/answers/${a.index}/retrieve`, "Retrieve") }, "Retrieve") },
    ], rows, { id: "qr-table", empty: "The modality has no matching study." }));
}
