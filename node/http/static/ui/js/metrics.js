// The node's Prometheus figures, sampled while the interface is open, and the small SVG
// charts of the system page. The samples are taken while that page is shown and kept in the
// browser only, for HISTORY_S seconds.

import { api } from "./api.js";
import { h } from "./dom.js";

export const SAMPLE_MS = 5000;
const HISTORY_S = 600;
const SVG = "http://www.w3.org/2000/svg";

/** {name: value} of the text exposition; labelled series summed by metric name. */
export function parsePrometheus(text) {
  const values = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) values[match[1]] = (values[match[1]] || 0) + value;
  }
  return values;
}

const samples = [];
let sampling = null;
const listeners = new Set();

async function sample() {
  let text;
  try {
    text = await api("tools/metrics-prometheus", { text: true });
  } catch {
    return; // metrics switched off (or the node away): this sample is skipped
  }
  const now = Date.now() / 1000;
  samples.push({ time: now, values: parsePrometheus(text) });
  while (samples.length && samples[0].time < now - HISTORY_S) samples.shift();
  for (const listener of listeners) listener(samples);
}

/** Sample while someone listens: ``listener`` is called after each sample until the returned function is called. */
export function onSamples(listener) {
  listeners.add(listener);
  if (!sampling) sampling = setInterval(sample, SAMPLE_MS);
  sample();
  return () => {
    listeners.delete(listener);
    if (!listeners.size) {
      clearInterval(sampling);
      sampling = null;
    }
  };
}

/** The rate per second of a counter between successive samples (a drop, as after a reset, counts 0). */
export function rates(list, name) {
  const points = [];
  for (let i = 1; i < list.length; i += 1) {
    const dt = list[i].time - list[i - 1].time;
    const delta = (list[i].values[name] || 0) - (list[i - 1].values[name] || 0);
    if (dt > 0) points.push([list[i].time, Math.max(0, delta) / dt]);
  }
  return points;
}

/** Mean of a histogram over each interval (its _sum change over its _count change). */
export function intervalMeans(list, name) {
  const points = [];
  for (let i = 1; i < list.length; i += 1) {
    const count = (list[i].values[`${name}_count`] || 0) - (list[i - 1].values[`${name}_count`] || 0);
    const sum = (list[i].values[`${name}_sum`] || 0) - (list[i - 1].values[`${name}_sum`] || 0);
    points.push([list[i].time, count > 0 ? sum / count : 0]);
  }
  return points;
}

export const gauge = (list, name) => list.map((s) => [s.time, s.values[name] || 0]);

const WIDTH = 300;
const HEIGHT = 80;

/** A small line chart: ``series`` [{label, points: [[t, v]...]}], the last value in the legend. */
export function chart(title, series, unit, format = (v) => v.toFixed(1)) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const all = series.flatMap((s) => s.points);
  const now = Date.now() / 1000;
  const start = now - HISTORY_S;
  const top = Math.max(1e-9, ...all.map((p) => p[1]));
  series.forEach((s, index) => {
    if (s.points.length < 2) return;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", s.points.map(([t, v]) =>
      `${(((t - start) / HISTORY_S) * WIDTH).toFixed(1)},${(HEIGHT - 4 - (v / top) * (HEIGHT - 8)).toFixed(1)}`).join(" "));
    line.setAttribute("class", `line line-${index}`);
    svg.append(line);
  });
  const latest = series.map((s) => `${s.label} ${s.points.length ? format(s.points[s.points.length - 1][1]) : "–"}${unit}`).join(", ");
  svg.setAttribute("aria-label", `${title}, last 10 minutes; now: ${latest}`);
  return h("figure", { class: "chart-box" }, h("figcaption", {}, h("strong", {}, title), " ",
    series.map((s, index) => h("span", { class: `legend legend-${index}` }, `${s.label} ${s.points.length ? format(s.points[s.points.length - 1][1]) : "–"}${unit}`))), svg,
  h("span", { class: "muted scale" }, `max ${format(top)}${unit}`));
}
