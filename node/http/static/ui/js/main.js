// The router: the part of the address after # names the page ("#/study/<id>", "#/jobs", ...).
// A page may return a function that stops what it keeps doing (polling) when another is shown.

import { get } from "./api.js";
import { patientsPage, resourcePage, studiesPage } from "./browse.js";
import { h, replace } from "./dom.js";
import { jobsPage } from "./jobs.js";
import { queryPage } from "./query.js";
import { systemPage } from "./system.js";
import { uploadPage } from "./upload.js";

const main = document.getElementById("main");
const RESOURCE_LEVELS = new Set(["patient", "study", "series", "instance"]);
const SECTION_OF = { patient: "patients", study: "studies", series: "studies", instance: "studies" };
let stopPage = null;
let shown = 0; // the number of the latest navigation: an older page that finishes loading late is not shown

function parse() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  return { section: parts[0] || "studies", id: parts[1], params: new URLSearchParams(query || "") };
}

async function show() {
  const { section, id, params } = parse();
  if (stopPage) stopPage();
  stopPage = null;
  const mine = ++shown;
  const active = SECTION_OF[section] || section;
  for (const link of document.querySelectorAll("nav [data-section]")) {
    if (link.dataset.section === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.setAttribute("aria-busy", "true");
  try {
    let stop = null;
    if (RESOURCE_LEVELS.has(section) && id) await resourcePage(main, section, id);
    else if (section === "patients") await patientsPage(main, params);
    else if (section === "upload") uploadPage(main);
    else if (section === "query") await queryPage(main);
    else if (section === "jobs") stop = jobsPage(main, params);
    else if (section === "system") stop = await systemPage(main);
    else await studiesPage(main, params);
    if (mine !== shown) {
      if (stop) stop();
      return;
    }
    stopPage = stop;
  } catch (error) {
    if (mine !== shown) return;
    replace(main, h("h1", {}, "This page cannot be shown"),
      h("p", { class: "error", id: "page-error" }, error.status === 404 ? "It no longer exists (deleted?)." : error.message),
      h("p", {}, h("a", { href: "#/studies" }, "Back to the studies")));
  } finally {
    main.setAttribute("aria-busy", "false");
  }
  document.title = `${main.querySelector("h1")?.textContent || "DICOM node"} — DICOM node`;
  // Keyboard users land on the new content, not on the link they followed.
  if (document.activeElement === document.body || document.activeElement?.closest("nav, header")) main.focus();
}

// "/" jumps to the first search field of the page, as on many sites.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, textarea, select, dialog")) return;
  const search = main.querySelector("input[type=search], input");
  if (search) {
    event.preventDefault();
    search.focus();
  }
});

// The skip link moves the focus; following it as a link would change the page's address.
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", show);
get("system").then((system) => {
  if (system.Name) document.getElementById("brand").textContent = system.Name;
}, () => null);
show();
