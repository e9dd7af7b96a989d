// The system page: what the node is, what it stores, small charts of its Prometheus figures,
// and its modalities and peers, each with a button that checks it answers.

import { get, post } from "./api.js";
import { bytes, h, replace, table } from "./dom.js";
import { chart, gauge, intervalMeans, onSamples, rates } from "./metrics.js";

function card(title, entries, id) {
  return h("section", { class: "card", id },
    h("h2", {}, title),
    h("dl", {}, entries.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])));
}

function echoButton(name, check) {
  const result = h("span", { class: "echo-result", "aria-live": "polite" });
  const button = h("button", { type: "button", class: "echo" }, "Echo");
  button.addEventListener("click", async () => {
    button.disabled = true;
    result.textContent = "…";
    try {
      await check();
      result.textContent = "answers";
      result.className = "echo-result ok";
    } catch (error) {
      result.textContent = `no answer: ${error.message}`;
      result.className = "echo-result error";
    }
    button.disabled = false;
  });
  return h("span", {}, button, " ", result);
}

export async function systemPage(main) {
  const [system, statistics, modalities, peers] = await Promise.all([
    get("system"), get("statistics"), get("modalities?expand"), get("peers?expand"),
  ]);
  const charts = h("div", { class: "charts", id: "charts" }, h("p", { class: "muted" }, "Sampling…"));
  replace(main,
    h("h1", {}, `System: ${system.Name || "node"}`),
    h("div", { class: "cards" },
      card("Node", [
        ["DICOM AET", system.DicomAet], ["DICOM port", String(system.DicomPort)], ["HTTP port", String(system.HttpPort)],
        ["Version", `${system.Product ? `${system.Product.Name} ${system.Product.Version}, ` : ""}API ${system.ApiVersion} (Orthanc ${system.Version})`],
      ], "system-node"),
      card("Storage", [
        ["On disk", bytes(Number(statistics.TotalDiskSize))], ["Uncompressed", bytes(Number(statistics.TotalUncompressedSize))],
      ], "system-storage"),
      card("Counts", [
        ["Patients", String(statistics.CountPatients)], ["Studies", String(statistics.CountStudies)],
        ["Series", String(statistics.CountSeries)], ["Instances", String(statistics.CountInstances)],
      ], "system-counts")),
    h("h2", {}, "Activity (last 10 minutes)"),
    charts,
    h("h2", {}, "DICOM modalities"),
    table([
      { label: "Name", cell: ([name]) => name, sort: ([name]) => name },
      { label: "AET", cell: ([, m]) => m.AET },
      { label: "Host", cell: ([, m]) => `${m.Host}:${m.Port}` },
      { label: "Check", cell: ([name]) => echoButton(name, () => post(`modalities/${encodeURIComponent(name)}/echo`, {})) },
    ], Object.entries(modalities), { id: "modalities-table", empty: "No modality declared (DicomModalities)." }),
    h("h2", {}, "Orthanc peers"),
    table([
      { label: "Name", cell: ([name]) => name, sort: ([name]) => name },
      { label: "URL", cell: ([, p]) => p.Url },
      { label: "Check", cell: ([name]) => echoButton(name, () => get(`peers/${encodeURIComponent(name)}/system`)) },
    ], Object.entries(peers), { id: "peers-table", empty: "No peer declared (OrthancPeers)." }));
  const stop = onSamples((samples) => {
    replace(charts,
      chart("Ingest", [{ label: "instances/s", points: rates(samples, "orthanc_count_instances") }], ""),
      chart("Jobs", [
        { label: "pending", points: gauge(samples, "orthanc_jobs_pending") },
        { label: "running", points: gauge(samples, "orthanc_jobs_running") },
        { label: "failed", points: gauge(samples, "orthanc_jobs_failed") },
      ], "", (v) => v.toFixed(0)),
      chart("Request latency", [{ label: "mean", points: intervalMeans(samples, "trionode_rest_api_request_duration_seconds").map(([t, v]) => [t, v * 1000]) }], " ms"),
      chart("Requests", [{ label: "per s", points: rates(samples, "trionode_rest_api_request_duration_seconds_count") }], ""),
      chart("Disk", [{ label: "MB", points: gauge(samples, "orthanc_disk_size_mb") }], ""));
  });
  return stop;
}
