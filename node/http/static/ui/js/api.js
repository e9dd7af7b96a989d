// The node's REST API, as the pages use it. Every address is relative to the folder above
// /ui/, so that the interface also works behind a reverse proxy that serves the node under a prefix.

export const BASE = new URL("../", document.baseURI);
// A page opened as http://user:password@host/ui/ keeps them in its address; a request must not
// name them (fetch refuses it): the browser sends the credentials it was given for the site.
BASE.username = "";
BASE.password = "";

/** The full address of a REST path ("studies/…" or "/studies/…"). */
export function url(path) {
  return new URL(String(path).replace(/^\//, ""), BASE).href;
}

/** An error answer of the node, with Orthanc's message and details when it gave them. */
export class ApiError extends Error {
  constructor(status, answer) {
    const details = answer && answer.Details ? `: ${answer.Details}` : "";
    const message = answer && answer.Message ? `${answer.Message}${details}` : `HTTP ${status}`;
    super(message);
    this.status = status;
  }
}

/** The answer of one request: parsed JSON, or text with ``{text: true}``. */
export async function api(path, { method = "GET", body, text = false } = {}) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.body = typeof body === "string" ? body : JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url(path), options);
  const content = await response.text();
  if (!response.ok) {
    let answer = null;
    try {
      answer = JSON.parse(content);
    } catch {
      answer = null;
    }
    throw new ApiError(response.status, answer);
  }
  if (text) return content;
  return content ? JSON.parse(content) : null;
}

export const get = (path) => api(path);
export const post = (path, body = {}) => api(path, { method: "POST", body });
export const put = (path, body) => api(path, { method: "PUT", body });
export const del = (path) => api(path, { method: "DELETE" });

const COMPLETED = new Set(["Success", "Failure"]);
export const JOB_POLL_MS = 300;

/** Follow a job until it ends, calling ``onUpdate(job)`` at each look; the final job. */
export async function watchJob(id, onUpdate, signal) {
  for (;;) {
    const job = await get(`jobs/${encodeURIComponent(id)}`);
    onUpdate(job);
    if (COMPLETED.has(job.State) || (signal && signal.aborted)) return job;
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
  }
}

/** Upload one file (a DICOM file or a ZIP of them) with progress: the parsed answer. */
export function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url("instances"));
    request.withCredentials = true;
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress((100 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => {
      let answer = null;
      try {
        answer = request.responseText ? JSON.parse(request.responseText) : null;
      } catch {
        answer = null;
      }
      if (request.status >= 200 && request.status < 300) resolve(answer);
      else reject(new ApiError(request.status, answer));
    });
    request.addEventListener("error", () => reject(new Error("The connection to the node failed")));
    request.send(file);
  });
}
