// Upload: files, folders and ZIP archives dropped on the page (or chosen with the file
// pickers), each sent in its own POST /instances with its own progress bar and result.

import { uploadFile } from "./api.js";
import { bytes, h, progressBar, replace } from "./dom.js";

// Files sent at the same time: enough to keep the node busy, few enough to leave it room.
const PARALLEL_UPLOADS = 3;

/** Every file of a dropped item, folders walked recursively. */
async function filesOfEntry(entry) {
  if (entry.isFile) return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
  if (!entry.isDirectory) return [];
  const reader = entry.createReader();
  const files = [];
  // A directory reader answers in batches: read until it answers none.
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) files.push(...(await filesOfEntry(child)));
  }
  return files;
}

async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files];
  const files = [];
  for (const entry of entries) files.push(...(await filesOfEntry(entry)));
  return files;
}

/** What the node said of one file (a DICOM file: one answer; a ZIP: a list of them). */
function describe(answer) {
  const answers = Array.isArray(answer) ? answer : [answer];
  if (!answers.length) return { text: "no DICOM file found in it", study: null, ok: false };
  const count = (status) => answers.filter((a) => a.Status === status).length;
  const stored = count("Success");
  const already = count("AlreadyStored");
  const parts = [];
  if (stored) parts.push(`${stored} stored`);
  if (already) parts.push(`${already} already stored`);
  const other = answers.length - stored - already;
  if (other) parts.push(`${other} ${answers.find((a) => !["Success", "AlreadyStored"].includes(a.Status)).Status}`);
  return { text: parts.join(", "), study: answers[0].ParentStudy, ok: other === 0 };
}

export function uploadPage(main) {
  const rows = h("tbody");
  const overall = progressBar("Overall upload progress");
  const summary = h("p", { id: "upload-summary", class: "muted", "aria-live": "polite" }, "Nothing uploaded yet.");
  const filesInput = h("input", { type: "file", multiple: true, id: "upload-files", class: "visually-hidden" });
  const folderInput = h("input", { type: "file", webkitdirectory: true, id: "upload-folder", class: "visually-hidden" });
  const zone = h("div", { class: "dropzone", id: "dropzone", tabindex: 0, role: "button", "aria-describedby": "dropzone-help" },
    h("strong", {}, "Drop DICOM files, folders or ZIP archives here"),
    h("span", { id: "dropzone-help", class: "muted" }, "or press Enter to choose files"));
  const state = { total: 0, done: 0, sentBytes: 0, totalBytes: 0, results: { ok: 0, failed: 0 } };

  const refresh = () => {
    overall.set(state.totalBytes ? (100 * state.sentBytes) / state.totalBytes : 0);
    summary.textContent = `${state.done} of ${state.total} files done: ${state.results.ok} accepted, ${state.results.failed} refused.`;
  };

  const enqueue = (files) => {
    const pending = [];
    for (const file of files) {
      const bar = progressBar(`Upload of ${file.name}`);
      const result = h("span", { class: "result" }, "waiting");
      const row = h("tr", { class: "upload-row" },
        h("td", {}, file.webkitRelativePath || file.name), h("td", {}, bytes(file.size)), h("td", {}, bar), h("td", {}, result));
      rows.append(row);
      pending.push({ file, bar, result, row });
      state.total += 1;
      state.totalBytes += file.size;
    }
    refresh();
    let next = 0;
    const worker = async () => {
      while (next < pending.length) {
        const item = pending[next++];
        let sent = 0;
        item.result.textContent = "sending";
        try {
          const answer = await uploadFile(item.file, (percent) => {
            item.bar.set(percent);
            const now = (percent / 100) * item.file.size;
            state.sentBytes += now - sent;
            sent = now;
            refresh();
          });
          const outcome = describe(answer);
          item.bar.set(100);
          replace(item.result, outcome.text, outcome.study ? [" — ", h("a", { href: `#/study/${outcome.study}` }, "open the study")] : null);
          item.row.dataset.outcome = outcome.ok ? "ok" : "failed";
          state.results[outcome.ok ? "ok" : "failed"] += 1;
        } catch (error) {
          replace(item.result, h("span", { class: "error" }, error.message));
          item.row.dataset.outcome = "failed";
          state.results.failed += 1;
        }
        state.sentBytes += item.file.size - sent;
        state.done += 1;
        refresh();
      }
    };
    for (let i = 0; i < Math.min(PARALLEL_UPLOADS, pending.length); i += 1) worker();
  };

  for (const input of [filesInput, folderInput]) {
    input.addEventListener("change", () => {
      enqueue([...input.files]);
      input.value = "";
    });
  }
  zone.addEventListener("click", () => filesInput.click());
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      filesInput.click();
    }
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    enqueue(await droppedFiles(event.dataTransfer));
  });

  replace(main,
    h("h1", {}, "Upload"),
    zone,
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => filesInput.click() }, "Choose files…"), filesInput,
      h("button", { type: "button", onclick: () => folderInput.click() }, "Choose a folder…"), folderInput),
    h("div", { class: "overall" }, overall, summary),
    h("table", { class: "grid", id: "upload-table" },
      h("thead", {}, h("tr", {}, ["File", "Size", "Progress", "Result"].map((t) => h("th", { scope: "col" }, t)))),
      rows));
}
