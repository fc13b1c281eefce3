// The dashboard's script: one view per address (/dashboard: tasks, /dashboard/tasks/<id>: one task,
// /dashboard/batches/<id>: a batch; the study views of study.js: /dashboard/models, /dashboard/apps/<model>/<n>,
// /dashboard/batches), drawn from the JSON API with the token the shared script (/assets/session.js) keeps. Live
// views follow the gateway's event streams.
"use strict";

const { element, say, api, blob, follow } = Assay;
const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const SEVERITY_COLORS = { critical: "#6d0a15", high: "#c01c28", medium: "#e66100", low: "#f5c211", info: "#9a9996" };
const STATUSES = ["pending", "running", "completed", "partial", "failed", "cancelled"];
const TERMINAL = new Set(["completed", "partial", "failed", "cancelled"]);
const ANALYSIS_TYPES = ["security", "static", "dynamic", "performance", "ai", "comprehensive"];
const FOLLOWED_AT_ONCE = 4;  // event streams open together: a browser allows 6 connections per host
const REFRESH_MS = 4000;  // how often the task list looks for tasks it does not show yet

let leaving = null;  // aborts the current view's streams and timers when another view is shown

// ---- small building blocks ----

function link(href, text) {
  return element("a", { href, "data-nav": "" }, text);
}

function path(...parts) {
  return "/" + parts.map(encodeURIComponent).join("/");
}

function query(values) {
  const chosen = Object.entries(values).filter(([, value]) => value !== "" && value !== null && value !== undefined);
  return chosen.length ? "?" + new URLSearchParams(chosen).toString() : "";
}

function badge(severity) {
  return element("span", { class: "badge sev-" + severity }, severity);
}

function statusCell(status) {
  return element("span", { class: "status-cell st-" + status }, status);
}

function number(value, digits) {
  if (value === null || value === undefined) return "–";
  return digits === undefined ? String(value) : Number(value).toFixed(digits);
}

function cell(value, numeric) {
  return element("td", numeric ? { class: "number" } : {}, value);
}

// A table: a caption, headers (a trailing "#" marks a numeric column) and rows of cells (strings or nodes).
function table(caption, headers, rows, attributes) {
  const numeric = headers.map((header) => header.endsWith("#"));
  return element("table", attributes || {},
    element("caption", {}, caption),
    element("thead", {}, element("tr", {}, ...headers.map((header, index) =>
      element("th", { scope: "col", class: numeric[index] ? "number" : null }, header.replace(/#$/, ""))))),
    element("tbody", {}, ...rows.map((row) => element("tr", {}, ...row.map((value, index) =>
      cell(value, numeric[index]))))));
}

// A labelled <select>; `onChange(value)` on every change. "" is the "all" choice.
function choice(id, label, options, selected, onChange) {
  const select = element("select", { id, name: id },
    element("option", { value: "" }, "all"),
    ...options.map((option) => element("option", { value: option, selected: option === selected ? "" : null }, option)));
  select.addEventListener("change", () => onChange(select.value));
  return [element("label", { for: id }, label), select];
}

function heading(text) {
  return element("h2", { tabindex: "-1" }, text);
}

let navigated = false;  // the view was changed in the page (a link, the batch form), not loaded

function show(...nodes) {
  const main = document.getElementById("view");
  main.replaceChildren(...nodes.filter((node) => node !== null));
  if (navigated) main.querySelector("h2").focus();  // where a keyboard user continues after following a link
}

function aborted(signal) {
  return signal.aborted;
}

// ---- the views ----

// Every task, newest first, filtered by status, model and analysis type. Each unfinished task on screen follows
// its own event stream, so its row moves (running, progress, completed) without a reload; the list itself is
// read again every few seconds to find tasks that started since.
async function tasksView(signal) {
  const params = new URLSearchParams(location.search);
  const filters = { status: params.get("status") || "", model_slug: params.get("model") || "",
    analysis_type: params.get("type") || "" };
  const models = await api("/api/models").catch(() => ({ models: [] }));
  const rows = new Map();  // task id -> {row, status cell, progress cell, findings cell, state}
  const followed = new Map();  // task id -> AbortController of its event stream
  const body = element("tbody", {});
  const list = element("table", { id: "tasks", "aria-describedby": "tasks-note" },
    element("caption", {}, "Tasks, newest first"),
    element("thead", {}, element("tr", {}, ...["Task", "Model", "App", "Analysis type", "Status", "Progress",
      "Findings", "Created"].map((name) => element("th", { scope: "col" }, name)))),
    body);
  const note = element("p", { id: "tasks-note", class: "muted" },
    "Unfinished tasks update live from their event streams; new tasks appear within a few seconds.");

  const refilter = (key, value) => {
    filters[key] = value;
    const shown = { status: filters.status, model: filters.model_slug, type: filters.analysis_type };
    history.replaceState(null, "", "/dashboard" + query(shown));
    for (const controller of followed.values()) controller.abort();
    followed.clear();
    rows.clear();
    body.replaceChildren();
    refresh();
  };
  const form = element("form", { class: "filters", role: "search", "aria-label": "Filter tasks" },
    ...choice("filter-status", "Status", STATUSES, filters.status, (v) => refilter("status", v)),
    ...choice("filter-model", "Model", models.models.map((m) => m.model_slug), filters.model_slug,
      (v) => refilter("model_slug", v)),
    ...choice("filter-type", "Analysis type", ANALYSIS_TYPES, filters.analysis_type,
      (v) => refilter("analysis_type", v)));
  form.addEventListener("submit", (event) => event.preventDefault());
  show(heading("Tasks"), form, note, list);

  function update(taskId, change) {
    const entry = rows.get(taskId);
    if (!entry) return;
    if (change.status && !(TERMINAL.has(entry.status) && !TERMINAL.has(change.status))) {
      entry.status = change.status;  // an event's terminal status is never taken back by an older database read
      entry.statusCell.replaceChildren(statusCell(change.status));
      entry.row.classList.toggle("live", !TERMINAL.has(change.status));
      entry.row.dataset.status = change.status;
    }
    if (change.percent !== undefined) entry.progressCell.textContent = Math.round(change.percent) + " %";
    if (change.findings !== undefined) entry.findingsCell.textContent = String(change.findings);
  }

  function followNext() {
    for (const [taskId, entry] of rows) {
      if (followed.size >= FOLLOWED_AT_ONCE) return;
      if (TERMINAL.has(entry.status) || followed.has(taskId) || entry.followedOnce) continue;
      const controller = new AbortController();
      signal.addEventListener("abort", () => controller.abort());
      followed.set(taskId, controller);
      entry.followedOnce = true;
      follow(path("api", "tasks", taskId, "events"), (kind, event) => {
        if (kind === "started") update(taskId, { status: "running" });
        else if (kind === "progress") update(taskId, { status: "running", percent: event.percent });
        else if (kind === "completed") update(taskId, { status: event.status, percent: 100 });
        else if (kind === "failed" || kind === "cancelled") update(taskId, { status: kind });
      }, controller.signal).catch(() => {}).finally(() => {
        followed.delete(taskId);
        if (!aborted(signal)) followNext();
      });
    }
  }

  async function refresh() {
    try {
      const page = await api("/api/tasks" + query({ ...filters, limit: 50 }));
      if (aborted(signal)) return;
      page.tasks.slice().reverse().forEach((task) => {
        if (rows.has(task.task_id)) {
          update(task.task_id, { status: task.status, findings: task.findings_count,
            percent: TERMINAL.has(task.status) ? undefined : task.progress_percent });
          return;
        }
        const statusCellNode = element("td", {}, statusCell(task.status));
        const progressCell = element("td", { class: "number" }, Math.round(task.progress_percent) + " %");
        const findingsCell = element("td", { class: "number" }, String(task.findings_count));
        const row = element("tr", { "data-task-id": task.task_id, "data-status": task.status,
          class: TERMINAL.has(task.status) ? null : "live" },
          element("td", {}, link(path("dashboard", "tasks", task.task_id), task.task_id)),
          element("td", {}, task.model_slug), cell(String(task.app_number), true), element("td", {}, task.analysis_type),
          statusCellNode, progressCell, findingsCell,
          element("td", {}, new Date(task.created_at).toLocaleString()));
        rows.set(task.task_id, { row, status: task.status, statusCell: statusCellNode, progressCell, findingsCell });
        body.prepend(row);
      });
      say(page.total + " task(s)" + (page.total > page.tasks.length ? ", the newest " + page.tasks.length + " shown" : ""));
      followNext();
    } catch (error) {
      say(error.message);
    }
  }

  await refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

// One task: where it stands (live while it runs), its files and trace, its load test, and its findings grouped
// into issues with their source lines.
async function taskView(taskId, signal) {
  const task = await api(path("api", "tasks", taskId));
  if (aborted(signal)) return;
  const filters = { severity: "", tool: "" };
  const issuesHolder = element("div", { id: "issues", "aria-live": "polite" });
  const progress = element("progress", { max: "100", value: String(task.progress.percent), id: "task-progress",
    "aria-label": "Progress" });
  const status = element("dd", { id: "task-status" }, statusCell(task.status));
  const facts = element("dl", { class: "facts" },
    element("dt", {}, "App"), element("dd", {}, link(path("dashboard", "apps", task.model_slug, String(task.app_number)),
      task.model_slug + " / app" + task.app_number)),
    element("dt", {}, "Analysis type"), element("dd", {}, task.analysis_type),
    element("dt", {}, "Status"), status,
    element("dt", {}, "Progress"), element("dd", {}, progress, " " + Math.round(task.progress.percent) + " %"),
    element("dt", {}, "Findings"), element("dd", {}, task.findings_count + " findings in " + task.issues_count + " issues"),
    element("dt", {}, "Created"), element("dd", {}, new Date(task.created_at).toLocaleString()),
    ...(task.status_reason ? [element("dt", {}, "Reason"), element("dd", {}, task.status_reason)] : []));

  const files = element("div", { id: "files" });
  const links = element("div", { class: "links" },
    element("a", { href: path("traces", taskId), id: "trace-link" }, "Trace of this task"),
    files);

  const counts = table("Findings and issues by severity", ["Severity", "Findings#", "Issues#"],
    SEVERITIES.map((level) => [badge(level), String(task.severity_breakdown[level] || 0),
      String(task.issue_severity_breakdown[level] || 0)]), { id: "severity-counts" });
  const tools = task.tools.length ? table("Tool runs", ["Tool", "Status", "Findings#", "Seconds#"],
    task.tools.map((tool) => [tool.tool, tool.status + (tool.reason ? " (" + tool.reason + ")" : ""),
      String(tool.findings_count), number(tool.duration_s, 1)]), { id: "tool-runs" })
    : element("p", { class: "muted" }, "No tool run recorded yet.");
  const load = task.load.length ? table("Load test per URL",
    ["URL", "Requests#", "Errors#", "Error rate#", "p50 ms#", "p99 ms#", "Requests/s#"],
    task.load.map((figures) => [figures.url, String(figures.requests), String(figures.errors),
      // The share of this row's own numbers, so the three columns always agree.
      (figures.requests ? (100 * figures.errors / figures.requests).toFixed(1) : "0.0") + " %", number(figures.p50_ms, 1), number(figures.p99_ms, 1),
      number(figures.throughput_rps, 1)]), { id: "load" }) : null;

  const filterForm = element("form", { class: "filters", role: "search", "aria-label": "Filter issues" },
    ...choice("filter-severity", "Severity", SEVERITIES, "", (v) => { filters.severity = v; loadIssues(); }),
    ...choice("filter-tool", "Tool", Object.keys(task.findings_by_tool), "", (v) => { filters.tool = v; loadIssues(); }));
  filterForm.addEventListener("submit", (event) => event.preventDefault());

  const verdicts = task.verdicts ? table("Verdicts on the app" + (task.waived_rules.length ? " (waived by its batch: " +
    task.waived_rules.join(", ") + ")" : ""), ["Verdict", "Answer", "Why"],
    ["works", "exploitable", "flagged"].map((name) => [name, answerCell(task.verdicts[name].answer, name),
      task.verdicts[name].reason]), { id: "task-verdicts" }) : null;
  show(heading("Task " + taskId), facts, links, verdicts,
    element("div", { class: "columns" }, counts, tools), load,
    element("h2", {}, "Issues"), filterForm, issuesHolder);

  let asked = 0;  // the latest request wins: an older answer arriving late is dropped
  async function loadIssues() {
    const mine = ++asked;
    try {
      const page = await api(path("api", "tasks", taskId, "issues") + query({ ...filters, limit: 1000 }));
      if (mine !== asked) return;
      issuesHolder.replaceChildren(
        element("p", { id: "issues-summary" }, page.total + " issue(s) holding " + page.findings_total + " finding(s)"),
        ...page.issues.map((issue) => issueCard(taskId, issue)));
    } catch (error) {
      issuesHolder.textContent = error.message;
    }
  }

  async function loadFiles() {
    if (!task.result_dir) {
      files.replaceChildren(element("span", { class: "muted" }, "no result files yet"));
      return;
    }
    try {
      const manifest = await api(path("api", "tasks", taskId, "files", "manifest.json"));
      const listed = [{ path: "manifest.json", size: null }, ...manifest.files];
      const select = element("select", { id: "result-file", name: "result-file" },
        ...listed.map((file) => element("option", { value: file.path },
          file.path + (file.size === null ? "" : " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)"))));
      const button = element("button", { type: "button" }, "Save file");
      button.addEventListener("click", () => save(taskId, select.value));
      files.replaceChildren(element("label", { for: "result-file" }, "Result files"), " ", select, " ", button);
    } catch (error) {
      files.textContent = "result files: " + error.message;
    }
  }

  await Promise.all([loadIssues(), loadFiles()]);
  say("");
  if (!TERMINAL.has(task.status)) {
    follow(path("api", "tasks", taskId, "events"), (kind, event) => {
      if (kind === "progress") {
        progress.value = event.percent;
        status.replaceChildren(statusCell("running"));
      } else if (TERMINAL.has(kind)) {
        status.replaceChildren(statusCell(kind === "completed" ? event.status : kind));
      }
    }, signal).then(() => { if (!aborted(signal)) setTimeout(() => route(), 1500); }).catch(() => {});
  }
}

async function save(taskId, name) {
  try {
    const data = await blob(path("api", "tasks", taskId, "files", ...name.split("/")));
    const url = URL.createObjectURL(data);
    const anchor = element("a", { href: url, download: name.split("/").pop() });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say("saved " + name);
  } catch (error) {
    say(error.message);
  }
}

// One issue: its severity, weakness and place, and (opened) its findings and the source lines they point at.
function issueCard(taskId, issue) {
  const where = (issue.path || "(no file)") + (issue.line ? ":" + issue.line +
    (issue.end_line && issue.end_line !== issue.line ? "-" + issue.end_line : "") : "");
  const findings = element("ul", {}, ...issue.findings.map((finding) =>
    element("li", { class: "finding" }, badge(finding.severity), " ",
      element("code", {}, finding.tool + ":" + finding.rule_id), " line " + number(finding.line) + " — " +
      finding.message)));
  const source = element("div", { class: "source-holder" });
  const details = element("details", {},
    element("summary", {}, "Findings and source"), findings, source);
  details.addEventListener("toggle", () => {
    if (details.open && !source.dataset.loaded && issue.path && issue.line) {
      source.dataset.loaded = "yes";
      showSource(taskId, issue, source);
    }
  });
  return element("article", { class: "issue " + issue.severity, "data-group": issue.group_key,
    "data-findings": String(issue.findings_count), "aria-label": issue.severity + " " + issue.weakness + " at " + where },
    element("h3", {}, badge(issue.severity), element("span", {}, issue.weakness),
      element("span", { class: "where" }, where),
      element("span", { class: "count" }, issue.findings_count + " finding(s) from " + issue.tools.join(", "))),
    details);
}

async function showSource(taskId, issue, holder) {
  try {
    const context = await api(path("api", "tasks", taskId, "source") + query({ path: issue.path, line: issue.line,
      end_line: issue.end_line || issue.line, context: 3 }));
    holder.replaceChildren(element("pre", { class: "source", "aria-label": "Source of " + context.path +
      " around line " + context.line },
      ...context.lines.map((line) => {
        const flagged = line.number >= context.line && line.number <= context.end_line;
        const text = element("span", { class: flagged ? "flagged" : null },
          element("span", { class: "number" }, (flagged ? "▶ " : "  ") + line.number), line.text);
        return flagged ? element("mark", {}, text) : text;
      })));
  } catch (error) {
    holder.textContent = "source: " + error.message;
  }
}

// A batch: tasks per status and per model, and each task, redrawn from every frame of its event stream.
async function batchView(batchId, signal) {
  const holder = element("div", { id: "batch" });
  show(heading("Batch " + batchId), holder);
  const draw = (batch) => {
    const statuses = STATUSES.filter((name) => Object.values(batch.by_model).some((counts) => counts[name]));
    holder.replaceChildren(
      element("p", {}, element("progress", { max: String(batch.total), value: String(batch.done),
        "aria-label": "Tasks ended" }), " " + batch.done + " of " + batch.total + " task(s) ended (" +
        Math.round(batch.percent) + " %)" + (batch.finished ? ", finished" : ", live")),
      element("div", { class: "columns" },
        table("Tasks per status", ["Status", "Tasks#"],
          STATUSES.map((name) => [statusCell(name), String(batch.by_status[name] || 0)]), { id: "batch-status" }),
        table("Tasks per model and status", ["Model", ...statuses.map((name) => name + "#")],
          Object.entries(batch.by_model).map(([model, counts]) =>
            [model, ...statuses.map((name) => String(counts[name] || 0))]), { id: "batch-models" })),
      table("Tasks of the batch", ["Task", "Model", "App#", "Analysis type", "Status", "Findings#"],
        batch.tasks.map((task) => [link(path("dashboard", "tasks", task.task_id), task.task_id), task.model_slug,
          String(task.app_number), task.analysis_type, statusCell(task.status), String(task.findings_count)]),
        { id: "batch-tasks" }));
  };
  draw(await api(path("api", "batches", batchId)));
  say("");
  follow(path("api", "batches", batchId, "events"), (kind, batch) => draw(batch), signal).catch((error) => {
    if (!aborted(signal)) say(error.message);
  });
}

// ---- navigation ----

function route() {
  if (leaving) leaving.abort();
  leaving = new AbortController();
  const signal = leaving.signal;
  const parts = location.pathname.split("/").filter(Boolean);
  if (parts[0] === "dashboard") parts.shift();
  const [kind, id, number] = parts;
  const view = kind === "tasks" && id ? "task" : kind === "batches" && id ? "batch" : kind === "batches" ? "batches"
    : kind === "models" ? "models" : kind === "apps" && id && number ? "app" : "tasks";
  for (const anchor of document.querySelectorAll("nav a[data-view]")) {
    if (anchor.dataset.view === view) anchor.setAttribute("aria-current", "page");
    else anchor.removeAttribute("aria-current");
  }
  say("loading…");
  const shown = view === "task" ? taskView(decodeURIComponent(id), signal)
    : view === "batch" ? batchView(decodeURIComponent(id), signal)
    : view === "batches" ? batchesView(signal)
    : view === "app" ? appView(decodeURIComponent(id), decodeURIComponent(number), signal)
    : view === "models" ? studyView(signal) : tasksView(signal);
  shown.catch((error) => { if (!aborted(signal)) say(error.message); });
}

function go(href) {
  navigated = true;
  history.pushState(null, "", href);
  route();
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-nav]");
  if (!anchor || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  go(anchor.getAttribute("href"));
});
window.addEventListener("popstate", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("batch-form").addEventListener("submit", (event) => {
    event.preventDefault();
    go(path("dashboard", "batches", document.getElementById("batch-id").value.trim()));
  });
});
Assay.onToken(route);
