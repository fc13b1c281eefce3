// The trace page's script. The shared one (/assets/session.js) holds the token and sends it; this one reads the
// task's trace and findings from the API and draws them.
"use strict";

const { element, say, api } = Assay;
const taskId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");

// The spans depth first (each parent before its children, siblings by start) with each one's depth; a span whose
// parent is not in the trace starts a tree of its own.
function treeOrder(spans) {
  const ids = new Set(spans.map((span) => span.span_id));
  const children = new Map();
  const roots = [];
  for (const span of spans.slice().sort((a, b) => a.start_ns - b.start_ns)) {
    if (span.parent_span_id && ids.has(span.parent_span_id) && span.parent_span_id !== span.span_id) {
      if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
      children.get(span.parent_span_id).push(span);
    } else {
      roots.push(span);
    }
  }
  const ordered = [];
  const seen = new Set();
  const visit = (span, depth) => {
    if (seen.has(span.span_id)) return;  // a malformed cycle is shown once, not followed forever
    seen.add(span.span_id);
    ordered.push([span, depth]);
    for (const child of children.get(span.span_id) || []) visit(child, depth + 1);
  };
  for (const root of roots) visit(root, 0);
  return ordered;
}

function milliseconds(ns) {
  const ms = ns / 1e6;
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(1) + " ms";
}

async function showFindings(tool, button, holder) {
  button.disabled = true;
  const path = "/api/tasks/" + encodeURIComponent(taskId) + "/findings?tool=" + encodeURIComponent(tool);
  try {
    const page = await api(path);
    const items = page.findings.map((finding) =>
      element("li", {}, finding.severity + " " + finding.rule_id + " " + (finding.path || "") +
        (finding.line ? ":" + finding.line : "") + " — " + finding.message));
    // The API path as text, not a link: followed by the browser it would carry no token.
    holder.replaceChildren(
      element("span", {}, page.total + " finding(s) of " + tool + " from "),
      element("code", {}, "GET " + path),
      element("ul", {}, ...items));
  } catch (error) {
    holder.textContent = error.message;
  }
  button.disabled = false;
}

function spanRow(span, depth, start, total) {
  const error = span.status === "ERROR";
  const label = element("span", { class: "label" });
  label.style.paddingLeft = depth * 1.2 + "rem";  // CSSOM, not a style attribute: the page's CSP forbids inline ones
  if (error) label.append(element("span", { class: "marker" }, "[error]"));
  label.append(span.name, element("span", { class: "duration" }, milliseconds(span.end_ns - span.start_ns)));
  label.title = span.name;
  const left = ((span.start_ns - start) / total) * 100;
  const width = ((span.end_ns - span.start_ns) / total) * 100;
  const bar = element("span", { class: "bar" });
  bar.style.left = left + "%";
  bar.style.width = width + "%";
  const row = element("li", { class: "span" + (error ? " error" : ""), "data-span-id": span.span_id },
    label, element("span", { class: "track", "aria-hidden": "true" }, bar));
  const tool = span.attributes["assay.tool.findings"] !== undefined && span.name.startsWith("tool ")
    ? span.name.slice("tool ".length) : null;
  if (tool) {
    const holder = element("div", { class: "findings" });
    const button = element("button", { type: "button", "data-tool": tool },
      "Findings of " + tool + " (" + span.attributes["assay.tool.findings"] + ")");
    button.addEventListener("click", () => showFindings(tool, button, holder));
    holder.append(button);
    row.append(holder);
  }
  return row;
}

function render(trace) {
  const spans = trace.spans.slice().sort((a, b) => a.start_ns - b.start_ns);
  const main = document.getElementById("waterfall");
  if (spans.length === 0) {
    main.replaceChildren();
    say(trace.trace_id ? "trace " + trace.trace_id + " has no span here (it went to the collector)" : "no trace yet");
    return;
  }
  const start = spans[0].start_ns;
  const total = Math.max(...spans.map((span) => span.end_ns)) - start || 1;
  const lanes = new Map();  // service -> its [span, depth] in tree order, services in the order they first act
  for (const [span, depth] of treeOrder(spans)) {
    if (!lanes.has(span.service)) lanes.set(span.service, []);
    lanes.get(span.service).push([span, depth]);
  }
  main.replaceChildren(...[...lanes].map(([service, own]) =>
    element("section", { class: "lane", "data-service": service, "aria-label": service },
      element("h2", {}, service + " (" + own.length + (own.length === 1 ? " span)" : " spans)")),
      element("ol", {}, ...own.map(([span, depth]) => spanRow(span, depth, start, total))))));
  const errors = spans.filter((span) => span.status === "ERROR").length;
  say(spans.length + " spans in trace " + trace.trace_id + ", " + milliseconds(total) +
    (errors ? ", " + errors + " with errors" : ", no error"));
}

async function load() {
  say("loading…");
  try {
    render(await api("/api/tasks/" + encodeURIComponent(taskId) + "/trace"));
  } catch (error) {
    say(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("task-id").textContent = taskId;
});
Assay.onToken(load);
