// The dashboard's study views: the model comparison (/dashboard/models: verdicts per model with their intervals, the
// ranking and pairwise tests, the models x weakness-family heatmap, each cell opening the apps and findings behind
// it, then the quality charts and the runs left out), one app across its runs (/dashboard/apps/<model>/<n>:
// verdicts, proofs, history), and the batches (/dashboard/batches). Uses the helpers of dashboard.js.
"use strict";

const MEASURE_ANSWERS = { works: ["works", "yes"], not_exploitable: ["exploitable", "no"], both: [null, null],
  not_flagged: ["flagged", "no"] };

function percent(value) {
  return value === null || value === undefined ? "–" : Math.round(value * 100) + " %";
}

function shareText(share) {
  if (share.share === null) return "no known answer" + (share.unknown ? " (" + share.unknown + " unknown)" : "");
  const interval = share.interval ? " (" + percent(share.interval.low) + "–" + percent(share.interval.high) + ")"
    : " (too few apps)";
  return share.yes + "/" + share.known + " = " + percent(share.share) + interval +
    (share.unknown ? ", " + share.unknown + " unknown" : "");
}

// An answer, coloured by whether it is good news: `works yes` is, `exploitable yes` and `flagged yes` are not
// (a measure's own answers, like "not exploitable", are good when yes).
function answerCell(answer, verdict) {
  const good = answer === "unknown" ? "unknown" : (verdict === "exploitable" || verdict === "flagged") === (answer === "no")
    ? "good" : "bad";
  return element("span", { class: "answer answer-" + good }, answer);
}

function appLink(model, number) {
  return link(path("dashboard", "apps", model, String(number)), model + " / app" + number);
}

// The batches, newest first, each opening its progress and its report.
async function batchesView(signal) {
  const page = await api("/api/batches?limit=100");
  if (aborted(signal)) return;
  show(heading("Batches"), page.batches.length ? table("Batches, newest first (" + page.total + ")",
    ["Batch", "Created", "Ended#", "Completed#", "Partial#", "Failed#", "Models", "Types", "Report"],
    page.batches.map((batch) => [link(path("dashboard", "batches", batch.batch_id), batch.batch_id),
      new Date(batch.created_at).toLocaleString(), batch.done + "/" + batch.total,
      String(batch.by_status.completed), String(batch.by_status.partial), String(batch.by_status.failed),
      batch.models.join(", "), batch.analysis_types.join(", "),
      link("/dashboard/models" + query({ batch: batch.batch_id }), "report")]), { id: "batches" })
    : element("p", {}, "No batch yet."));
  say("");
}

// The model comparison of one batch (or every task) and one analysis type.
async function studyView(signal) {
  const params = new URLSearchParams(location.search);
  const chosen = { batch: params.get("batch") || "", type: params.get("type") || "" };
  const [report, batches] = await Promise.all([
    api("/api/reports/models" + query({ batch: chosen.batch })),
    api("/api/batches?limit=100").catch(() => ({ batches: [] })),
  ]);
  if (aborted(signal)) return;
  const types = [...new Set(report.verdicts.map((row) => row.analysis_type))];
  const type = types.includes(chosen.type) ? chosen.type : types[0] || "";
  const holder = element("div", { id: "comparison" });
  const reopen = (changes) => go("/dashboard/models" + query({ ...chosen, ...changes }));
  const form = element("form", { class: "filters", "aria-label": "Choose the report" },
    ...choice("report-batch", "Batch", batches.batches.map((b) => b.batch_id), chosen.batch,
      (value) => reopen({ batch: value, type: "" })),
    element("label", { for: "report-type" }, "Analysis type"),
    (() => {
      const select = element("select", { id: "report-type", name: "report-type" },
        ...types.map((t) => element("option", { value: t, selected: t === type ? "" : null }, t)));
      select.addEventListener("change", () => reopen({ type: select.value }));
      return select;
    })());
  form.querySelector("option[value='']").textContent = "every task";
  form.addEventListener("submit", (event) => event.preventDefault());
  show(heading("Model comparison"), form, holder);
  if (!type) {
    holder.replaceChildren(element("p", {}, "No completed task" + (chosen.batch ? " in this batch" : "") +
      ": nothing to compare."), excludedTable(report));
    say("");
    return;
  }
  const detail = element("section", { id: "cell-detail", "aria-live": "polite", tabindex: "-1" });
  const rows = report.verdicts.filter((row) => row.analysis_type === type);
  holder.replaceChildren(
    element("p", { class: "muted" }, "Shares of apps with a known answer, with Wilson's " +
      percent(report.confidence_level) + " interval (none below " + report.min_apps + " apps). Waived rules: " +
      (report.waived_rules.join(", ") || "none") + ". Select a cell to see the apps behind it."),
    verdictTable(report, rows, detail), detail, rankingTable(report, type), pairwiseTable(report, type),
    heatmap(report, type, detail),
    element("h2", {}, "Quality (source findings in the app's own code, per 1,000 lines)"),
    severityFigure(report.quality.filter((q) => q.analysis_type === type)),
    densityFigure(report.quality.filter((q) => q.analysis_type === type), percent(report.confidence_level)),
    overlapFigure(report.quality.filter((q) => q.analysis_type === type)),
    shortToolsTable(report, type), excludedTable(report));
  say(rows.length + " model(s), generated " + new Date(report.generated_at).toLocaleString());
}

function verdictTable(report, rows, detail) {
  const measures = Object.keys(report.measures);
  return element("table", { id: "verdicts" },
    element("caption", {}, "Verdicts per model"),
    element("thead", {}, element("tr", {}, element("th", { scope: "col" }, "Model"),
      element("th", { scope: "col", class: "number" }, "Apps"),
      ...measures.map((m) => element("th", { scope: "col" }, report.measures[m])))),
    element("tbody", {}, ...rows.map((row) => element("tr", { "data-model": row.model_slug },
      element("th", { scope: "row" }, row.model_slug), cell(String(row.apps), true),
      ...measures.map((measure) => {
        const button = element("button", { type: "button", class: "cell", "data-measure": measure },
          shareText(row[measure]));
        button.addEventListener("click", () => showVerdictApps(row, measure, report.measures[measure], detail));
        return element("td", {}, button);
      })))));
}

function showVerdictApps(row, measure, title, detail) {
  const [verdict, wanted] = MEASURE_ANSWERS[measure];
  const items = row.app_verdicts.map((app) => {
    const reason = element("div", { class: "reason" });
    const more = element("details", {}, element("summary", {}, "Why"), reason);
    more.addEventListener("toggle", () => {
      if (more.open && !reason.dataset.loaded) {
        reason.dataset.loaded = "yes";
        verdictReasons(app.task_id, reason);
      }
    });
    const says = verdict === null ? answerCell(app.works === "yes" && app.exploitable === "no" ? "yes"
      : app.works === "unknown" || app.exploitable === "unknown" ? "unknown" : "no")
      : answerCell(app[verdict] === "unknown" ? "unknown" : app[verdict] === wanted ? "yes" : "no");
    return element("li", { "data-app": String(app.app_number) }, appLink(row.model_slug, app.app_number), " ",
      says, " (works ", answerCell(app.works, "works"), ", exploitable ",
      answerCell(app.exploitable, "exploitable"), ", flagged ", answerCell(app.flagged, "flagged"), ") ", link(path("dashboard", "tasks", app.task_id), app.task_id), more);
  });
  detail.replaceChildren(element("h3", {}, row.model_slug + " · " + title + ": " + shareText(row[measure])),
    element("ul", { class: "apps" }, ...items));
  detail.focus();
}

async function verdictReasons(taskId, holder) {
  try {
    const task = await api(path("api", "tasks", taskId));
    const findings = await api(path("api", "tasks", taskId, "findings") + "?limit=1000");
    const byPrint = new Map(findings.findings.map((f) => [f.fingerprint, f]));
    holder.replaceChildren(...["works", "exploitable", "flagged"].map((name) => {
      const verdict = task.verdicts[name];
      const behind = verdict.findings.map((print) => byPrint.get(print)).filter(Boolean);
      return element("div", {}, element("strong", {}, name + ": " + verdict.answer), " — " + verdict.reason,
        behind.length ? element("ul", {}, ...behind.map(findingItem)) : null);
    }));
  } catch (error) {
    holder.textContent = error.message;
  }
}

function findingItem(finding) {
  return element("li", { class: "finding" }, badge(finding.severity), " ",
    element("code", {}, finding.tool + ":" + finding.rule_id), " " + (finding.path || "") +
    (finding.line ? ":" + finding.line : "") + " — " + finding.message, finding.proof ? proofBlock(finding.proof) : null);
}

function proofBlock(proof) {
  return element("div", { class: "proof" }, element("strong", {}, "Proof: "), proof.why,
    element("ol", {}, ...proof.exchanges.map((exchange) => element("li", {}, element("code", {},
      exchange.method + " " + exchange.path + " → " + (exchange.status === null ? "no answer" : exchange.status)),
      exchange.response_excerpt ? element("pre", { class: "excerpt" }, exchange.response_excerpt) : null))),
    element("p", {}, "Evidence: ", element("code", {}, proof.evidence)));
}

function rankingTable(report, type) {
  const entries = report.rankings[type] || [];
  if (!entries.length) return null;
  return table("Ranking by " + report.measures[entries[0].measure] + " (models no test tells apart share no order)",
    ["Rank#", "Model", "Share#", "Interval", "Apps#", "Significantly better than", "Not told apart from"],
    entries.map((e) => [String(e.rank), e.model_slug, percent(e.share),
      e.interval ? percent(e.interval.low) + "–" + percent(e.interval.high) : "too few apps", String(e.known),
      e.better_than.join(", ") || "–", e.not_distinguished_from.join(", ") || "–"]), { id: "ranking" });
}

function pairwiseTable(report, type) {
  const tests = report.pairwise.filter((t) => t.analysis_type === type);
  if (!tests.length) return null;
  return table("Pairwise tests (McNemar's exact test over apps paired by number, Holm-adjusted; significant below " +
    report.alpha + ")", ["Measure", "Model a", "Model b", "Pairs#", "a only#", "b only#", "p (Holm)#", "Significant"],
    tests.map((t) => [report.measures[t.measure], t.model_a, t.model_b, String(t.pairs), String(t.a_only),
      String(t.b_only), number(t.p_adjusted, 4), t.significant ? "yes: " + t.better + " better" : "no"]),
    { id: "pairwise" });
}

// Models x weakness family: each cell the apps affected (confirmed by attack in brackets), shaded by their share.
function heatmap(report, type, detail) {
  const cells = report.families.filter((row) => row.analysis_type === type);
  const columns = report.family_columns.filter((column) => cells.some((row) => row.family === column.id));
  const models = report.verdicts.filter((row) => row.analysis_type === type).map((row) => row.model_slug);
  const figure = element("figure", { id: "heatmap-figure", class: "wide" },
    element("figcaption", {}, "Weakness families: apps affected per model (a finding at " +
      report.family_min_severity + " or worse, or confirmed, in the app's own code; confirmed in brackets)"));
  if (!columns.length) {
    figure.append(element("p", {}, "No counted app has a finding of a weakness family."));
    return figure;
  }
  const found = new Map(cells.map((row) => [row.model_slug + "\u001f" + row.family, row]));
  figure.append(element("table", { id: "heatmap" },
    element("caption", {}, "Models x weakness family"),
    element("thead", {}, element("tr", {}, element("th", { scope: "col" }, "Model"),
      ...columns.map((column) => element("th", { scope: "col", title: column.cwes.join(", ") }, column.title)))),
    element("tbody", {}, ...models.map((model) => element("tr", { "data-model": model },
      element("th", { scope: "row" }, model),
      ...columns.map((column) => {
        const row = found.get(model + "\u001f" + column.id);
        if (!row) return element("td", { class: "heat", "data-family": column.id }, "0");
        const button = element("button", { type: "button", class: "cell",
          "aria-label": model + ", " + column.title + ": " + row.apps_affected + " of " + row.apps + " apps, " +
            row.apps_confirmed + " confirmed" }, row.apps_affected + " (" + row.apps_confirmed + ")");
        button.addEventListener("click", () => showFamilyApps(row, column, report.family_min_severity, detail));
        const td = element("td", { class: "heat", "data-family": column.id }, button);
        td.style.background = "rgba(192, 28, 40, " + (0.1 + 0.6 * row.share_affected).toFixed(2) + ")";
        return td;
      }))))));
  return figure;
}

function showFamilyApps(row, column, minimum, detail) {
  const items = row.affected.map((app) => {
    const findings = element("ul", { class: "family-findings" });
    const item = element("li", { "data-app": String(app.app_number) }, appLink(row.model_slug, app.app_number),
      " " + app.findings + " finding(s) of " + app.weaknesses.join(", "),
      app.confirmed ? element("span", { class: "confirmed" }, " confirmed by attack") : null, findings);
    familyFindings(app.task_id, column.cwes.length ? column.cwes : [column.id], minimum, findings);
    return item;
  });
  detail.replaceChildren(element("h3", {}, row.model_slug + " · " + row.title + ": " + row.apps_affected +
    " of " + row.apps + " apps"), element("ul", { class: "apps" }, ...items));
  detail.focus();
}

// The findings of one app in one family, as the heatmap counts them (the app's own code, at `minimum` or worse,
// or confirmed).
async function familyFindings(taskId, cwes, minimum, holder) {
  const counted = (f) => f.origin === "app" && (f.proof || SEVERITIES.indexOf(f.severity) <= SEVERITIES.indexOf(minimum));
  try {
    const page = await api(path("api", "tasks", taskId, "issues") + "?limit=1000");
    const issues = page.issues.filter((issue) => cwes.includes(issue.weakness));
    holder.replaceChildren(...issues.flatMap((issue) => issue.findings.filter(counted)).map(findingItem));
  } catch (error) {
    holder.textContent = error.message;
  }
}

function shortToolsTable(report, type) {
  const rows = report.tools_not_in_full.filter((s) => s.analysis_type === type);
  const title = element("h2", {}, "Tools that did not run in full");
  if (!rows.length) return element("div", { id: "short-tools" }, title,
    element("p", {}, "None: every tool of the counted tasks ran in full."));
  return element("div", { id: "short-tools" }, title,
    table("Tools skipped or partial in the counted tasks (a skipped tool found nothing, whatever the apps have)",
      ["Tool", "Service", "Did not run in full", "Reasons"], rows.map((s) => [s.tool, s.service,
      s.status + " in " + s.tasks + " of " + s.of_tasks + " tasks", s.reasons.join("; ")])));
}

function excludedTable(report) {
  const note = element("p", {}, "Tasks not ended yet: " + report.unfinished + ".");
  if (!report.excluded.length) return element("div", { id: "excluded" }, element("h2", {}, "Runs left out"),
    element("p", {}, "None: every ended task in scope completed."), note);
  return element("div", { id: "excluded" }, element("h2", {}, "Runs left out"),
    table("Tasks that did not complete (counted nowhere)", ["Task", "Model", "App#", "Type", "Status", "Reason",
      "Counted instead"], report.excluded.map((r) => [link(path("dashboard", "tasks", r.task_id), r.task_id),
      r.model_slug, String(r.app_number), r.analysis_type, statusCell(r.status), r.reason || "–",
      r.counted_instead || "–"])), note);
}

// ---- the quality charts, each beside a table of its numbers ----

function severityFigure(models) {
  const legend = element("div", { class: "legend", "aria-hidden": "true" }, ...SEVERITIES.map((level) =>
    element("span", {}, swatch(SEVERITY_COLORS[level]), level)));
  const chart = Charts.stackedBars({
    title: "Issues by severity per model",
    description: "Stacked bars, one per model: " + models.map((m) => m.model_slug + " " +
      SEVERITIES.map((level) => (m.issues_by_severity[level] || 0) + " " + level).join(", ")).join("; ") + ".",
    rows: models.map((m) => ({ label: m.model_slug, parts: m.issues_by_severity })),
    keys: SEVERITIES, colors: SEVERITY_COLORS, axisLabel: "issues (distinct; findings in the table)",
  });
  return element("figure", { id: "chart-severity" },
    element("figcaption", {}, "Severity per model"),
    element("div", {}, legend, chart),
    table("Issues (findings) by severity", ["Model", ...SEVERITIES.map((level) => level + "#")],
      models.map((m) => [m.model_slug, ...SEVERITIES.map((level) =>
        (m.issues_by_severity[level] || 0) + " (" + (m.findings_by_severity[level] || 0) + ")")])));
}

// A model's findings per 1,000 lines interval as text between `before` and `after`; "" when it has none.
function densityText(m, before, between, after) {
  const interval = m.findings_per_kloc_interval;
  return interval ? before + number(interval.low, 2) + between + number(interval.high, 2) + after : "";
}

function densityFigure(models, level) {
  const chart = Charts.intervals({
    title: "Weighted issues per 1,000 lines with " + level + " intervals",
    description: models.map((m) => m.model_slug + ": score " + number(m.score.score, 2) + ", interval " +
      number(m.score.ci_low, 2) + " to " + number(m.score.ci_high, 2) + ", " + number(m.findings_per_kloc, 2) +
      " findings per 1,000 lines" + densityText(m, " (interval ", " to ", ")")).join("; ") + ".",
    rows: models.map((m) => ({ label: m.model_slug, value: m.score.score, low: m.score.ci_low, high: m.score.ci_high,
      other: m.findings_per_kloc, otherLow: m.findings_per_kloc_interval?.low ?? null,
      otherHigh: m.findings_per_kloc_interval?.high ?? null })),
    axisLabel: "per 1,000 lines of source", otherLabel: "findings per 1,000 lines",
  });
  const legend = element("div", { class: "legend", "aria-hidden": "true" },
    element("span", {}, "● score: weighted issues, mean over apps"),
    element("span", {}, "├─┤ its " + level + " bootstrap interval"),
    element("span", { class: "other-key" }, "□ findings, ─ their " + level + " interval"));
  return element("figure", { id: "chart-density" },
    element("figcaption", {}, "Findings per 1,000 lines, and the score with its confidence interval"),
    element("div", {}, legend, chart),
    table("Per 1,000 lines of source", ["Model", "Findings#", "Findings interval", "Issues#", "Score#", "Interval"],
      models.map((m) => [m.model_slug, number(m.findings_per_kloc, 2), densityText(m, "", " – ", "") || "–",
        number(m.issues_per_kloc, 2),
        number(m.score.score, 2), m.score.ci_low === null ? "–" :
          number(m.score.ci_low, 2) + " – " + number(m.score.ci_high, 2)])));
}

function overlapFigure(models) {
  const pairs = new Map();
  const alone = new Map();
  for (const m of models) {
    for (const overlap of m.tool_overlap) {
      const key = overlap.tools.join(" + ");
      pairs.set(key, (pairs.get(key) || 0) + overlap.issues);
    }
    for (const [tool, count] of Object.entries(m.only_one_tool)) alone.set(tool, (alone.get(tool) || 0) + count);
  }
  const tools = [...new Set([...alone.keys(), ...[...pairs.keys()].flatMap((key) => key.split(" + "))])].sort();
  const value = (a, b) => a === b ? alone.get(a) || 0 : pairs.get([a, b].sort().join(" + ")) || 0;
  const chart = Charts.matrix({
    title: "Tool overlap, all models",
    description: "Issues two tools both found, and (on the diagonal) issues only one tool found: " +
      [...pairs].map(([key, count]) => key + " " + count).join(", ") + "; only one tool: " +
      [...alone].map(([tool, count]) => tool + " " + count).join(", ") + ".",
    labels: tools, value,
  });
  return element("figure", { id: "chart-overlap" },
    element("figcaption", {}, "Tool overlap (diagonal: issues no other tool found)"),
    chart,
    table("Issues found by two tools, and by one tool only", ["Tools", "Issues#"],
      [...[...pairs].map(([key, count]) => [key, String(count)]),
        ...[...alone].map(([tool, count]) => [tool + " only", String(count)])]));
}

function swatch(color) {
  const node = element("span", { class: "swatch" });
  node.style.background = color;  // CSSOM, not a style attribute: the page's CSP forbids inline ones
  return node;
}

// One app: its verdicts (newest completed task of each type), the proofs behind `exploitable`, and every run.
async function appView(model, number, signal) {
  const page = await api("/api/tasks" + query({ model_slug: model, app_number: number, limit: 500 }));
  if (aborted(signal)) return;
  const newest = new Map();
  for (const task of page.tasks) {
    if (task.status === "completed" && task.verdicts && !newest.has(task.analysis_type)) newest.set(task.analysis_type, task);
  }
  const proofs = element("div", { id: "proofs" });
  show(heading(model + " / app" + number),
    newest.size ? table("Verdicts (newest completed task of each analysis type)",
      ["Analysis type", "Task", "Works", "Exploitable", "Flagged"],
      [...newest.values()].map((task) => [task.analysis_type, link(path("dashboard", "tasks", task.task_id),
        task.task_id), ...["works", "exploitable", "flagged"].map((name) =>
        answerCell(task.verdicts[name].answer, name))]), { id: "app-verdicts" })
      : element("p", {}, "No completed task with verdicts yet."),
    element("h2", {}, "Proofs"), proofs,
    table("History: every run, newest first", ["Task", "Type", "Status", "Created", "Findings#", "Works",
      "Exploitable", "Flagged", "Batch"], page.tasks.map((task) => [link(path("dashboard", "tasks", task.task_id),
      task.task_id), task.analysis_type, statusCell(task.status), new Date(task.created_at).toLocaleString(),
      String(task.findings_count), ...["works", "exploitable", "flagged"].map((name) =>
        task.verdicts ? answerCell(task.verdicts[name].answer, name) : "–"),
      task.batch_id ? link("/dashboard/models" + query({ batch: task.batch_id }), task.batch_id) : "–"]),
    { id: "history" }));
  const proven = [...newest.values()].filter((task) => task.verdicts.exploitable.answer === "yes");
  const shown = [];
  for (const task of proven) {
    const findings = await api(path("api", "tasks", task.task_id, "findings") + "?limit=1000");
    shown.push(...findings.findings.filter((f) => f.proof && task.verdicts.exploitable.findings.includes(f.fingerprint)));
  }
  proofs.replaceChildren(shown.length ? element("ul", {}, ...shown.map(findingItem))
    : element("p", {}, "No flaw of this app was confirmed by attack."));
  say("");
}
