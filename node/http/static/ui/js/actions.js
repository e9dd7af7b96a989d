// What can be done to a patient, study, series or instance: download, anonymize, modify, send
// and delete. Each long action runs as an asynchronous job of the node, followed in its dialog.

import { del, get, post, url, watchJob } from "./api.js";
import { h, progressBar, replace, toast } from "./dom.js";

const PLURAL = { patient: "patients", study: "studies", series: "series", instance: "instances" };
// The tags the modify dialog offers at each level (others can be added by name).
const EDITABLE = {
  patient: ["PatientName", "PatientID", "PatientBirthDate", "PatientSex"],
  study: ["StudyDescription", "AccessionNumber", "StudyDate", "StudyID", "ReferringPhysicianName"],
  series: ["SeriesDescription", "SeriesNumber", "BodyPartExamined", "ProtocolName"],
  instance: ["InstanceNumber", "ImageComments"],
};
const PARENT = { study: "ParentPatient", series: "ParentStudy", instance: "ParentSeries" };
const PARENT_LEVEL = { study: "patient", series: "study", instance: "series" };

export function resourceActions(level, resource) {
  const path = `${PLURAL[level]}/${resource.ID}`;
  const links = level === "instance"
    ? [h("a", { class: "button", href: url(`${path}/file`), download: `${resource.ID}.dcm`, id: "action-download" }, "Download DICOM file")]
    : [h("a", { class: "button", href: url(`${path}/archive`), download: `${resource.ID}.zip`, id: "action-zip" }, "Download ZIP"),
      h("a", { class: "button", href: url(`${path}/media`), download: `${resource.ID}-dicomdir.zip`, id: "action-dicomdir" }, "Download DICOMDIR")];
  return h("div", { class: "toolbar", role: "toolbar", "aria-label": "Actions" }, links,
    h("button", { type: "button", id: "action-anonymize", onclick: () => anonymizeDialog(level, resource) }, "Anonymize…"),
    h("button", { type: "button", id: "action-modify", onclick: () => modifyDialog(level, resource) }, "Modify…"),
    h("button", { type: "button", id: "action-send", onclick: () => sendDialog(level, resource) }, "Send…"),
    h("button", { type: "button", id: "action-delete", class: "danger", onclick: () => deleteDialog(level, resource) }, "Delete…"));
}

/** Open the page's (modal) dialog with a title and content; Escape or × closes it. */
export function openDialog(title, ...content) {
  const dialog = document.getElementById("dialog");
  replace(dialog,
    h("form", { method: "dialog", class: "dialog-close" }, h("button", { type: "submit", "aria-label": "Close", id: "dialog-close" }, "×")),
    h("h2", { id: "dialog-title" }, title), content);
  if (!dialog.open) dialog.showModal();
  return dialog;
}

export function closeDialog() {
  const dialog = document.getElementById("dialog");
  if (dialog.open) dialog.close();
}

/** A job followed in place: progress bar, state and, at the end, its outcome. */
export function jobMonitor(jobId, onDone) {
  const bar = progressBar("Job progress");
  const state = h("span", { class: "job-state", id: "job-state" }, "Pending");
  const outcome = h("div", { class: "job-outcome", id: "job-outcome" });
  const box = h("div", { class: "job-monitor", id: "job-monitor", dataset: { job: jobId } },
    h("p", {}, "Job ", h("a", { href: "#/jobs", onclick: closeDialog }, jobId.slice(0, 8)), ": ", state), bar, outcome);
  watchJob(jobId, (job) => {
    bar.set(job.Progress);
    state.textContent = job.State;
    state.dataset.state = job.State;
  }).then((job) => {
    if (job.State === "Failure") {
      replace(outcome, h("p", { class: "error" }, `${job.ErrorDescription}${job.ErrorDetails ? `: ${job.ErrorDetails}` : ""}`));
    } else if (onDone) {
      onDone(job, outcome);
    }
  }, (error) => replace(outcome, h("p", { class: "error" }, error.message)));
  return box;
}

function newResourceLink(job, outcome) {
  const content = job.Content || {};
  const match = /^\/(patients|studies|series|instances)\/([^/]+)$/.exec(content.Path || "");
  const level = match && Object.keys(PLURAL).find((key) => PLURAL[key] === match[1]);
  replace(outcome, h("p", {}, "Done. ", level ? h("a", { href: `#/${level}/${match[2]}`, id: "job-result-link", onclick: closeDialog }, "Open the result") : null));
}

function field(id, text, control) {
  return h("label", { for: id, class: "field" }, h("span", {}, text), control);
}

function anonymizeDialog(level, resource) {
  const keepPrivate = h("input", { type: "checkbox", id: "anon-keep-private" });
  const keep = h("input", { type: "text", id: "anon-keep", placeholder: "e.g. StudyDescription, SeriesDescription" });
  const name = h("input", { type: "text", id: "anon-name", placeholder: "generated when empty" });
  const start = h("button", { type: "submit", class: "primary", id: "anonymize-start" }, "Anonymize");
  const form = h("form", { class: "dialog-form" },
    h("p", {}, `A new, anonymized copy of this ${level} is made; the original stays.`),
    field("anon-name", "New patient name", name),
    field("anon-keep", "Tags to keep (comma separated)", keep),
    h("label", { class: "check" }, keepPrivate, " Keep private tags"),
    h("div", { class: "buttons" }, start));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    const body = { Asynchronous: true, KeepPrivateTags: keepPrivate.checked };
    const kept = keep.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (kept.length) body.Keep = kept;
    if (name.value.trim()) body.Replace = { PatientName: name.value.trim() };
    try {
      const answer = await post(`${PLURAL[level]}/${resource.ID}/anonymize`, body);
      form.replaceWith(jobMonitor(answer.ID, newResourceLink));
    } catch (error) {
      start.disabled = false;
      toast(`Anonymization refused: ${error.message}`, "error");
    }
  });
  openDialog(`Anonymize this ${level}`, form);
}

function modifyDialog(level, resource) {
  const tags = { ...(resource.PatientMainDicomTags || {}), ...resource.MainDicomTags };
  const rows = h("tbody");
  const addRow = (name, value) => {
    const nameInput = h("input", { type: "text", value: name, "aria-label": "Tag name", class: "tag-name" });
    const valueInput = h("input", { type: "text", value, "aria-label": `Value of ${name || "the tag"}`, class: "tag-value" });
    const remove = h("input", { type: "checkbox", "aria-label": `Remove ${name || "the tag"}`, class: "tag-remove" });
    rows.append(h("tr", { dataset: { original: value } }, h("td", {}, nameInput), h("td", {}, valueInput), h("td", {}, remove)));
  };
  for (const name of EDITABLE[level]) addRow(name, tags[name] || "");
  const dropSource = h("input", { type: "checkbox", id: "modify-drop-source" });
  const start = h("button", { type: "submit", class: "primary", id: "modify-start" }, "Modify");
  const form = h("form", { class: "dialog-form" },
    h("p", {}, "Change the values you want; tick a row to remove its tag. A modified copy is made, with new UIDs."),
    h("table", { class: "grid compact" }, h("thead", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Value"), h("th", {}, "Remove"))), rows),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => addRow("", "") }, "Add a tag"),
      h("label", { class: "check" }, dropSource, " Delete the original once modified"),
      start));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const replaced = {};
    const removed = [];
    for (const row of rows.children) {
      const name = row.querySelector(".tag-name").value.trim();
      const value = row.querySelector(".tag-value").value;
      if (!name) continue;
      if (row.querySelector(".tag-remove").checked) removed.push(name);
      else if (value !== row.dataset.original) replaced[name] = value;
    }
    const body = { Asynchronous: true, Replace: replaced, Remove: removed, Force: true };
    if (dropSource.checked) body.KeepSource = false;
    start.disabled = true;
    try {
      const answer = await post(`${PLURAL[level]}/${resource.ID}/modify`, body);
      form.replaceWith(jobMonitor(answer.ID, newResourceLink));
    } catch (error) {
      start.disabled = false;
      toast(`Modification refused: ${error.message}`, "error");
    }
  });
  openDialog(`Modify this ${level}`, form);
}

async function sendDialog(level, resource) {
  openDialog(`Send this ${level}`, h("p", {}, "Loading the destinations…"));
  const [modalities, peers] = await Promise.all([get("modalities?expand"), get("peers?expand")]);
  const options = [
    ...Object.entries(modalities).map(([name, m]) => h("option", { value: `modalities/${name}` }, `${name} — DICOM ${m.AET}@${m.Host}:${m.Port}`)),
    ...Object.entries(peers).map(([name, p]) => h("option", { value: `peers/${name}` }, `${name} — Orthanc peer ${p.Url}`)),
  ];
  if (!options.length) {
    openDialog(`Send this ${level}`, h("p", {}, "No modality or peer is declared: add them in the configuration (DicomModalities, OrthancPeers) or through the REST API."));
    return;
  }
  const target = h("select", { id: "send-target" }, options);
  const start = h("button", { type: "submit", class: "primary", id: "send-start" }, "Send");
  const form = h("form", { class: "dialog-form" }, field("send-target", "Destination", target), h("div", { class: "buttons" }, start));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    try {
      const answer = await post(`${target.value}/store`, { Resources: [resource.ID], Asynchronous: true });
      form.replaceWith(jobMonitor(answer.ID, (job, outcome) => replace(outcome, h("p", {}, "Sent."))));
    } catch (error) {
      start.disabled = false;
      toast(`Sending refused: ${error.message}`, "error");
    }
  });
  openDialog(`Send this ${level}`, form);
}

function deleteDialog(level, resource) {
  const confirm = h("button", { type: "button", class: "danger", id: "delete-confirm" }, `Delete the ${level}`);
  const cancel = h("button", { type: "button", id: "delete-cancel", onclick: closeDialog }, "Keep it");
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      await del(`${PLURAL[level]}/${resource.ID}`);
      closeDialog();
      toast(`The ${level} was deleted.`);
      const parent = PARENT[level] && resource[PARENT[level]];
      location.hash = parent ? `#/${PARENT_LEVEL[level]}/${parent}` : "#/studies";
    } catch (error) {
      confirm.disabled = false;
      toast(`Deletion failed: ${error.message}`, "error");
    }
  });
  openDialog(`Delete this ${level}?`,
    h("p", {}, `Its files leave the node's storage at once; this cannot be undone.`),
    h("div", { class: "buttons" }, cancel, confirm));
  cancel.focus();
}
