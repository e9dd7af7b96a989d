// The jobs dashboard: every job of the registry with its state, priority, progress, times and
// error, the actions on it, and the pending queue in the order the workers will take it. It
// looks again every POLL_MS while shown, and at once after an action; rows are updated in
// place so that the keyboard focus stays where it was.

import { api, get, post } from "./api.js";
import { duration, h, orthancTime, parseOrthancTime, progressBar, replace, toast } from "./dom.js";

export const POLL_MS = 500;
const ACTIVE = new Set(["Pending", "Running", "Retry", "Paused"]);
const STATES = ["", "Pending", "Running", "Retry", "Paused", "Success", "Failure"];

function eta(job) {
  if (job.State !== "Running" || !job.EstimatedTimeOfArrival) return "";
  const arrival = parseOrthancTime(job.EstimatedTimeOfArrival);
  const now = parseOrthancTime(job.Timestamp);
  return arrival && now ? duration((arrival - now) / 1000) : "";
}

function errorText(job) {
  if (job.State !== "Failure" && !job.ErrorDetails) return "";
  return `${job.ErrorDescription || ""}${job.ErrorDetails ? `: ${job.ErrorDetails}` : ""}`;
}

/** The row of one job, kept from one look to the next and updated in place. */
class JobRow {
  constructor(job, refresh) {
    this.id = job.ID;
    const act = (action) => async () => {
      try {
        await post(`jobs/${this.id}/${action}`);
      } catch (error) {
        toast(`${action} refused: ${error.message}`, "error");
      }
      refresh();
    };
    this.state = h("span", { class: "badge" });
    this.bar = progressBar(`Progress of job ${job.ID.slice(0, 8)}`);
    this.percent = h("span", { class: "percent" });
    this.priority = h("input", { type: "number", class: "priority", step: 1, "aria-label": `Priority of job ${job.ID.slice(0, 8)}` });
    this.priority.addEventListener("change", async () => {
      try {
        await api(`ui/api/jobs/${this.id}/priority`, { method: "PUT", body: parseInt(this.priority.value, 10) });
      } catch (error) {
        toast(`Priority refused: ${error.message}`, "error");
      }
      refresh();
    });
    this.created = h("td", { class: "time" });
    this.runtime = h("td", { class: "time" });
    this.remaining = h("td", { class: "time" });
    this.error = h("td", { class: "error-cell" });
    this.content = h("pre", { class: "content" });
    this.buttons = {
      pause: h("button", { type: "button", class: "job-pause", onclick: act("pause") }, "Pause"),
      resume: h("button", { type: "button", class: "job-resume", onclick: act("resume") }, "Resume"),
      cancel: h("button", { type: "button", class: "job-cancel danger", onclick: act("cancel") }, "Cancel"),
      resubmit: h("button", { type: "button", class: "job-resubmit", onclick: act("resubmit") }, "Resubmit"),
    };
    this.row = h("tr", { id: `job-${job.ID}`, dataset: { job: job.ID } },
      h("td", {}, h("details", {}, h("summary", {}, h("span", { class: "job-type" }, job.Type), " ", h("code", { class: "muted" }, job.ID.slice(0, 8))), this.content)),
      h("td", {}, this.state), h("td", {}, this.priority), h("td", { class: "progress-cell" }, this.bar, this.percent),
      this.created, this.runtime, this.remaining, this.error,
      h("td", { class: "actions" }, Object.values(this.buttons)));
  }

  update(job) {
    this.row.dataset.state = job.State;
    this.state.textContent = job.State;
    this.state.className = `badge state-${job.State.toLowerCase()}`;
    this.bar.set(job.Progress);
    this.percent.textContent = `${job.Progress}%`;
    if (document.activeElement !== this.priority) this.priority.value = job.Priority;
    this.priority.disabled = !ACTIVE.has(job.State);
    this.created.textContent = orthancTime(job.CreationTime);
    this.runtime.textContent = duration(job.EffectiveRuntime || 0);
    this.remaining.textContent = eta(job);
    this.error.textContent = errorText(job);
    const text = JSON.stringify(job.Content, null, 2);
    if (this.content.textContent !== text) this.content.textContent = text;
    const show = { pause: ["Pending", "Running", "Retry"], resume: ["Paused"], cancel: [...ACTIVE], resubmit: ["Failure"] };
    for (const [name, button] of Object.entries(this.buttons)) button.hidden = !show[name].includes(job.State);
  }
}

export function jobsPage(main, params) {
  const rows = new Map();
  const body = h("tbody");
  const queue = h("ol", { id: "pending-queue", class: "queue" });
  const counts = h("p", { id: "job-counts", class: "muted", "aria-live": "off" });
  const filter = h("select", { id: "job-filter" }, STATES.map((s) => h("option", { value: s }, s || "all states")));
  filter.value = params.get("state") || "";
  let timer = null;
  let stopped = false;

  const look = async () => {
    clearTimeout(timer);
    try {
      const [jobs, pending] = await Promise.all([get("jobs?expand"), get("ui/api/queue")]);
      if (stopped) return;
      render(jobs, pending);
    } catch (error) {
      counts.textContent = `Cannot read the jobs: ${error.message}`;
    }
    if (!stopped) timer = setTimeout(look, POLL_MS);
  };

  const render = (jobs, pending) => {
    // Newest first: the job just started is at the top.
    jobs.sort((a, b) => (a.CreationTime < b.CreationTime ? 1 : a.CreationTime > b.CreationTime ? -1 : 0));
    const seen = new Set();
    const byState = {};
    let previous = null;
    for (const job of jobs) {
      byState[job.State] = (byState[job.State] || 0) + 1;
      if (filter.value && job.State !== filter.value) continue;
      seen.add(job.ID);
      let row = rows.get(job.ID);
      if (!row) {
        row = new JobRow(job, look);
        rows.set(job.ID, row);
      }
      row.update(job);
      // Moved only when out of place, so that a focused button keeps its focus.
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== row.row) body.insertBefore(row.row, expected);
      previous = row.row;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.row.remove();
        rows.delete(id);
      }
    }
    const summary = Object.entries(byState).map(([state, n]) => `${n} ${state}`).join(", ");
    counts.textContent = `${jobs.length} jobs${summary ? `: ${summary}` : ""}.`;
    const names = new Map(jobs.map((job) => [job.ID, job]));
    replace(queue, pending.length
      ? pending.map((id) => {
        const job = names.get(id);
        const reveal = () => rows.get(id)?.row.querySelector("summary").focus();
        return h("li", {}, h("button", { type: "button", class: "link", onclick: reveal }, job ? job.Type : "job"), ` ${id.slice(0, 8)}`, job ? h("span", { class: "muted" }, ` priority ${job.Priority}`) : null);
      })
      : h("li", { class: "muted" }, "No job waits for a worker."));
  };

  filter.addEventListener("change", look);
  replace(main,
    h("h1", {}, "Jobs"),
    h("div", { class: "jobs-layout" },
      h("section", { "aria-labelledby": "queue-title", class: "queue-box" },
        h("h2", { id: "queue-title" }, "Pending queue"),
        h("p", { class: "muted" }, "In the order the workers will take the jobs: highest priority first, then oldest."),
        queue),
      h("section", { "aria-labelledby": "jobs-title" },
        h("div", { class: "section-head" }, h("h2", { id: "jobs-title" }, "All jobs"),
          h("label", { for: "job-filter", class: "inline" }, "Show ", filter)),
        counts,
        h("table", { class: "grid jobs", id: "jobs-table" },
          h("thead", {}, h("tr", {}, ["Type", "State", "Priority", "Progress", "Created (UTC)", "Run time", "Time left", "Error", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
          body))));
  look();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
