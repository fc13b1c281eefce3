"""The dashboard: its page and files are public and hold no data; the routes it reads (a finding's source lines, a
task's result files) never leave their root; and, in Chromium driven by Playwright, it shows a task completing live,
the task's findings grouped into issues with their source, a batch's progress, and the model comparison with
charts, each page usable from the keyboard and labelled, each one's screenshot written to the test's folder.

HTTP tests: a real gateway (uvicorn on loopback), a real nats-server, a real SQLite file. Browser tests: the real
stack as separate processes (tests/support/stack.py), or that gateway over a database seeded with 3 models x 10
apps as tests/test_model_report.py seeds it; Debian's Chromium (skipped, with the reason, when it is missing).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cli.roster import ServiceSpec
from shared.jetstream.nats_users import ORCHESTRATOR
from shared.jetstream.natsd import EmbeddedNats
from shared.results.findings import ToolRun
from tests import test_study_report as study
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, browser_missing
from tests.support.gateway import (
    APP,
    MODEL,
    Gateway,
    gateway_for,
    gateway_settings,
    insert_task,
    migrate_database,
)
from tests.support.stack import Stack
from tests.test_model_report import seed, seeded_apps

REPO = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO / "generated" / "apps" / MODEL / f"app{APP}" / "backend" / "app.py"
needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
# Every form control of the page has a label a screen reader announces (a <label> or an aria-label).
UNLABELLED = """() => [...document.querySelectorAll('input, select, button, progress')]
  .filter(n => n.offsetParent !== null && n.labels !== undefined && n.labels.length === 0
    && !n.getAttribute('aria-label') && !(n.tagName === 'BUTTON' && n.textContent.trim()))
  .map(n => n.outerHTML)"""


@pytest.fixture
async def gateway(tmp_path: Path, nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(tmp_path, nats_server.url, await migrate_database(database_url))
    async with gateway_for(settings) as running:
        yield running


async def test_the_page_and_its_files_are_public_and_hold_no_data(gateway: Gateway) -> None:
    await insert_task(gateway.settings.database_url, "task_0123456789ab")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        pages = [
            await anonymous.get(address)
            for address in ("/", "/dashboard", "/dashboard/models", "/dashboard/tasks/task_0123456789ab")
        ]
        files = [
            await anonymous.get(address)
            for address in (
                "/dashboard/assets/dashboard.js",
                "/dashboard/assets/charts.js",
                "/dashboard/assets/dashboard.css",
                "/assets/session.js",
                "/assets/base.css",
            )
        ]
        package_source = await anonymous.get("/dashboard/assets/__init__.py")
        tasks = await anonymous.get("/api/tasks")

    for page in pages:
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.text == pages[0].text  # one shell; the script reads the address
    for served in files:
        assert served.status_code == 200, served.url
        assert "default-src 'self'" in served.headers["content-security-policy"]
    assert package_source.status_code == 404
    for served in [*pages, *files]:
        assert "task_0123456789ab" not in served.text and MODEL not in served.text
    # Everything is served from here (no CDN, works offline) and the data needs the token the script sends.
    assert "http" not in pages[0].text.replace("http-equiv", "")
    for script in ("/assets/session.js", "/dashboard/assets/charts.js", "/dashboard/assets/dashboard.js"):
        assert f'src="{script}"' in pages[0].text
    assert tasks.status_code == 401


async def test_tasks_can_be_listed_by_analysis_type(gateway: Gateway) -> None:
    """The tasks view's third filter: the list narrows to one analysis type; an unknown one is a 422 naming it."""
    await insert_task(gateway.settings.database_url, "task_0123456789ab")  # a static analysis
    static = (await gateway.http.get("/api/tasks", params={"analysis_type": "static"})).json()
    dynamic = (await gateway.http.get("/api/tasks", params={"analysis_type": "dynamic"})).json()
    unknown = await gateway.http.get("/api/tasks", params={"analysis_type": "speed"})
    assert [task["task_id"] for task in static["tasks"]] == ["task_0123456789ab"]
    assert dynamic["total"] == 0 and dynamic["tasks"] == []
    assert unknown.status_code == 422 and "analysis_type" in unknown.text


def write_app_file(gateway: Gateway, relative: str, lines: list[str]) -> Path:
    file = gateway.settings.apps_dir / MODEL / f"app{APP}" / relative
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join(lines) + "\n")
    return file


async def test_source_lines_come_from_the_tasks_app_and_a_path_never_leaves_it(
    gateway: Gateway, tmp_path: Path
) -> None:
    task_id = "task_0123456789ab"
    await insert_task(gateway.settings.database_url, task_id)
    write_app_file(gateway, "backend/app.py", [f"line {number}" for number in range(1, 31)])
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the dashboard\n")
    (gateway.settings.apps_dir / MODEL / f"app{APP}" / "backend" / "link.py").symlink_to(secret)
    source = f"/api/tasks/{task_id}/source"

    around = await gateway.http.get(
        source, params={"path": "backend/app.py", "line": 10, "end_line": 11, "context": 2}
    )
    assert around.status_code == 200, around.text
    body = around.json()
    assert [line["number"] for line in body["lines"]] == [8, 9, 10, 11, 12, 13]
    assert [line["text"] for line in body["lines"]] == [f"line {number}" for number in range(8, 14)]
    assert (body["line"], body["end_line"]) == (10, 11)
    near_end = (await gateway.http.get(source, params={"path": "backend/app.py", "line": 30})).json()
    assert [line["number"] for line in near_end["lines"]] == [27, 28, 29, 30]  # the file ends at 30

    for outside in ("../../../../etc/passwd", "/etc/passwd", "backend/link.py", "backend/../../app2/x.py"):
        refused = await gateway.http.get(source, params={"path": outside, "line": 1})
        assert refused.status_code == 422, (outside, refused.text)
        assert refused.json()["errors"][0]["field"] == "path"
        assert "not for the dashboard" not in refused.text
    missing = await gateway.http.get(source, params={"path": "backend/none.py", "line": 1})
    assert missing.status_code == 404
    control = await gateway.http.get(source, params={"path": "backend/a\x01.py", "line": 1})
    assert control.status_code == 422
    too_long = await gateway.http.get(source, params={"path": "a" * 1000, "line": 1})
    assert too_long.status_code == 404  # no file can have that name
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as anonymous:
        assert (await anonymous.get(source, params={"path": "backend/app.py", "line": 1})).status_code == 401


async def test_result_files_are_served_from_the_tasks_folder_only(gateway: Gateway, tmp_path: Path) -> None:
    task_id = "task_0123456789ab"
    await insert_task(gateway.settings.database_url, task_id)  # its folder: <MODEL>/app<APP>/task_static_x
    folder = gateway.settings.results_dir / MODEL / f"app{APP}" / "task_static_x"
    (folder / "services").mkdir(parents=True)
    manifest = {"files": [{"path": "services/static.json", "size": 2, "sha256": "-"}]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "services" / "static.json").write_text("{}")
    (gateway.settings.results_dir / MODEL / f"app{APP}" / "other.json").write_text('{"other": true}')
    files = f"/api/tasks/{task_id}/files"

    served = await gateway.http.get(f"{files}/manifest.json")
    assert served.status_code == 200 and served.json() == manifest
    assert served.headers["content-type"].startswith("application/json")
    assert "attachment" in served.headers["content-disposition"]
    nested = await gateway.http.get(f"{files}/services/static.json")
    assert nested.status_code == 200 and nested.json() == {}
    # Dot segments sent as they are (not folded by the client) must still stay inside the folder.
    for outside in ("..%2Fother.json", "%2E%2E/other.json", "services/..%2F..%2Fother.json"):
        refused = await gateway.http.get(httpx.URL(f"{gateway.url}{files}/{outside}"))
        assert refused.status_code in (404, 422), (outside, refused.text)
        assert "other" not in refused.text or refused.status_code == 422
    assert (await gateway.http.get(f"{files}/none.json")).status_code == 404


# ---- in the browser ----


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("dashboard"), apps_dir=REPO / "generated" / "apps")
    stack.start()
    yield stack
    stack.stop()


def shot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot of what the test sees, under the test's folder (the path is printed)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def enter_token(page: Any, token: str) -> None:
    """Fill the token field from the keyboard, as a user would: its label finds it, Enter submits."""
    field = page.get_by_label("Bearer token")
    field.focus()
    page.keyboard.type(token)
    page.keyboard.press("Enter")


@needs_browser
def test_the_dashboard_shows_a_task_completing_live_and_its_grouped_findings(
    stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack.kill("orchestrator")  # the task stays pending until the page shows it, then runs while it watches
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=LAPTOP)
            page.goto(f"{stack.gateway_url}/")
            enter_token(page, stack.token)
            expect(page.locator("#tasks caption")).to_have_text("Tasks, newest first")
            page.evaluate("() => { window.notReloaded = true; }")

            task_id = stack.submit(
                model_slug=MODEL, app_number=APP, analysis_type="static", tools=["bandit", "ruff"]
            )
            row = page.locator(f"#tasks tr[data-task-id='{task_id}']")
            expect(row).to_have_attribute("data-status", "pending", timeout=30_000)
            stack.spawn(
                ServiceSpec(
                    "orchestrator", "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True
                )
            )
            expect(row).to_have_attribute("data-status", "completed", timeout=180_000)
            expect(row.locator("td").nth(4)).to_have_text("completed")
            # The row moved; the page was never reloaded.
            assert page.evaluate("() => window.notReloaded === true")
            task = stack.task(task_id)
            expect(row.locator("td").nth(6)).to_have_text(str(task["findings_count"]))
            # The filters are labelled selects; narrowing to failed tasks hides the completed one.
            page.get_by_label("Status").select_option("failed")
            expect(row).to_have_count(0)
            page.get_by_label("Status").select_option("")
            expect(row).to_have_count(1)
            assert page.evaluate(UNLABELLED) == []
            shot(page, tmp_path, "dashboard-tasks")

            # From the keyboard: focus the task's link, Enter opens the task view, its heading takes the focus.
            row.get_by_role("link", name=task_id).focus()
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name=f"Task {task_id}")).to_be_focused()
            check_grouped_findings(page, stack, task_id)
            shot(page, tmp_path, "dashboard-task")

            stack.kill("orchestrator")  # again: the batch's page shows it waiting, then moving
            batch = httpx.post(
                f"{stack.gateway_url}/api/batches",
                json={"models": [MODEL], "apps": [1, 2], "analysis_types": ["static"], "tools": ["bandit"]},
                headers=stack.headers,
                timeout=10,
            )
            assert batch.status_code == 202, batch.text
            batch_id = batch.json()["batch_id"]
            page.get_by_label("Batch id").fill(batch_id)
            page.get_by_label("Batch id").press("Enter")
            expect(page.get_by_role("heading", name=f"Batch {batch_id}")).to_be_visible()
            expect(page.locator("#batch")).to_contain_text("0 of 2 task(s) ended", timeout=30_000)
            stack.spawn(
                ServiceSpec(
                    "orchestrator", "services.orchestrator", nats_user=ORCHESTRATOR, analyzer_token=True
                )
            )
            expect(page.locator("#batch")).to_contain_text("2 of 2 task(s) ended", timeout=180_000)
            expect(page.locator("#batch-models tbody tr")).to_have_count(1)
            expect(page.locator("#batch-models tbody tr td").first).to_have_text(MODEL)
            expect(page.locator("#batch-tasks tbody tr")).to_have_count(2)
            batch_state = httpx.get(
                f"{stack.gateway_url}/api/batches/{batch_id}", headers=stack.headers, timeout=10
            ).json()
            for status, count in batch_state["by_status"].items():  # the table says what the API says
                status_row = page.locator("#batch-status tbody tr", has_text=status)
                expect(status_row.locator("td").nth(1)).to_have_text(str(count))
            shot(page, tmp_path, "dashboard-batch")
        finally:
            browser.close()


def check_grouped_findings(page: Any, stack: Stack, task_id: str) -> None:
    """The task view lists exactly the API's issues; a group holding several tools' findings opens, from the
    keyboard, onto its findings and the app's flagged source lines; the tool filter narrows the list."""
    from playwright.sync_api import expect

    issues = httpx.get(
        f"{stack.gateway_url}/api/tasks/{task_id}/issues",
        params={"limit": 1000},
        headers=stack.headers,
        timeout=10,
    ).json()
    expect(page.locator("#issues-summary")).to_have_text(
        f"{issues['total']} issue(s) holding {issues['findings_total']} finding(s)"
    )
    expect(page.locator("#issues article.issue")).to_have_count(issues["total"])
    grouped = [issue for issue in issues["issues"] if issue["findings_count"] > 1]
    assert grouped, "bandit and ruff report the sample app's SQL built from strings on the same lines"
    issue = grouped[0]
    card = page.locator(f"article.issue[data-group='{issue['group_key']}']")
    expect(card).to_have_attribute("data-findings", str(issue["findings_count"]))
    expect(card.locator("h3")).to_contain_text(f"{issue['findings_count']} finding(s) from bandit, ruff")
    card.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(card.locator("li.finding")).to_have_count(issue["findings_count"])
    flagged = card.locator("pre.source mark")
    expect(flagged.first).to_be_visible(timeout=15_000)
    source_lines = SAMPLE_APP.read_text().splitlines()
    expect(flagged.first).to_contain_text(source_lines[issue["line"] - 1].strip())

    verdicts = stack.task(task_id)["verdicts"]
    rows = page.locator("#task-verdicts tbody tr")
    expect(rows).to_have_count(3)
    for index, name in enumerate(("works", "exploitable", "flagged")):
        expect(rows.nth(index).locator("td").nth(1)).to_have_text(verdicts[name]["answer"])
        expect(rows.nth(index).locator("td").nth(2)).to_have_text(verdicts[name]["reason"])
    expect(page.locator("#trace-link")).to_have_attribute("href", f"/traces/{task_id}")
    expect(page.locator("#result-file option").first).to_have_text("manifest.json")
    assert page.locator("#result-file option").count() > 2  # the manifest lists the folder's files
    with page.expect_download() as saving:  # fetched with the token, then saved from the page
        page.get_by_role("button", name="Save file").click()
    assert saving.value.suggested_filename == "manifest.json"
    assert json.loads(Path(saving.value.path()).read_text())["task_id"] == task_id

    narrowed = httpx.get(
        f"{stack.gateway_url}/api/tasks/{task_id}/issues",
        params={"tool": "ruff", "severity": issue["severity"]},
        headers=stack.headers,
        timeout=10,
    ).json()["total"]
    page.get_by_label("Tool").select_option("ruff")
    page.get_by_label("Severity").select_option(issue["severity"])
    expect(page.locator("#issues article.issue")).to_have_count(narrowed)
    page.get_by_label("Tool").select_option("")
    page.get_by_label("Severity").select_option("")
    expect(page.locator("#issues article.issue")).to_have_count(issues["total"])
    card = page.locator(f"article.issue[data-group='{issue['group_key']}']")
    card.locator("summary").click()  # open again for the screenshot
    expect(card.locator("pre.source mark").first).to_be_visible(timeout=15_000)
    assert page.evaluate(UNLABELLED) == []


@needs_browser
async def test_the_comparison_page_draws_each_chart_beside_a_table_of_its_numbers(
    gateway: Gateway, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    apps = seeded_apps()
    await seed(gateway.settings.database_url, apps)
    report = (await gateway.http.get("/api/reports/models", params={"analysis_type": "comprehensive"})).json()
    models = sorted({app.model for app in apps})
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=LAPTOP)
            await page.goto(f"{gateway.url}/dashboard/models")
            # Tab walks the page in reading order: the skip link, the views, the batch form, the token field.
            focused = []
            for _ in range(6):
                await page.keyboard.press("Tab")
                focused.append(
                    await page.evaluate(
                        "() => document.activeElement.textContent || document.activeElement.id"
                    )
                )
            assert focused == [
                "Skip to content",
                "Tasks",
                "Model comparison",
                "Batches",
                "batch-id",
                "Open batch",
            ]
            field = page.get_by_label("Bearer token")
            await field.fill(str(gateway.token))
            await field.press("Enter")
            await expect(page.get_by_role("heading", name="Model comparison")).to_be_visible()
            await expect(page.locator("#verdicts tbody tr")).to_have_count(len(models))

            charts = page.locator("figure svg[role='img']")
            await expect(charts).to_have_count(3)
            for index in range(3):  # each chart is named and described, and has a table beside it
                chart = charts.nth(index)
                name = await chart.evaluate(
                    "svg => svg.getAttribute('aria-labelledby').split(' ')"
                    ".map(id => document.getElementById(id).textContent).join(' ')"
                )
                assert all(model in name for model in models) or "overlap" in name.lower(), name
                figure = page.locator("figure:has(svg[role='img'])").nth(index)
                await expect(figure.locator("table")).to_have_count(1)
            # Severity: one stacked bar per model, its segments summing to the model's issues.
            figures = {entry["model_slug"]: entry for entry in report["quality"]}
            for model in models:
                row = page.locator("#chart-severity tbody tr", has_text=model)
                cells = await row.locator("td").all_inner_texts()
                assert [int(text.split(" ")[0]) for text in cells[1:]] == [
                    figures[model]["issues_by_severity"].get(level, 0)
                    for level in ("critical", "high", "medium", "low", "info")
                ]
            assert await page.locator("#chart-severity svg rect").count() >= len(models)
            # Intervals: a point and an interval per model, the point inside it.
            assert await page.locator("#chart-density svg circle.point").count() == len(models)
            assert await page.locator("#chart-density svg line.interval").count() == len(models)
            inside = await page.evaluate(
                """() => {
                  const lines = [...document.querySelectorAll('#chart-density svg line.interval')];
                  const points = [...document.querySelectorAll('#chart-density svg circle.point')];
                  return points.map((p, i) => +lines[i].getAttribute('x1') <= +p.getAttribute('cx') + 0.01
                    && +p.getAttribute('cx') <= +lines[i].getAttribute('x2') + 0.01);
                }"""
            )
            assert inside == [True] * len(models)
            assert await page.locator("#chart-density svg rect.other").count() == len(models)  # findings/kLOC
            # ... each with its own interval, the square's centre inside it
            density_inside = await page.evaluate(
                """() => {
                  const lines = [...document.querySelectorAll('#chart-density svg line.other-interval')];
                  const squares = [...document.querySelectorAll('#chart-density svg rect.other')];
                  return squares.map((r, i) => {
                    const centre = +r.getAttribute('x') + 5;
                    return lines.length === squares.length && +lines[i].getAttribute('x1') <= centre + 0.01
                      && centre <= +lines[i].getAttribute('x2') + 0.01;
                  });
                }"""
            )
            assert density_inside == [True] * len(models)
            # Overlap: a square of the tools, its diagonal the issues only that tool found.
            tools = sorted(
                {tool for entry in report["quality"] for tool in entry["only_one_tool"]}
                | {
                    tool
                    for entry in report["quality"]
                    for pair in entry["tool_overlap"]
                    for tool in pair["tools"]
                }
            )
            assert await page.locator("#chart-overlap svg rect").count() == len(tools) ** 2

            # The keyboard reaches the analysis type choice, and every control is labelled.
            assert await page.evaluate(UNLABELLED) == []
            await page.get_by_label("Analysis type").focus()
            await expect(page.get_by_label("Analysis type")).to_be_focused()
            path = tmp_path / "dashboard-models.png"
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")

            # A task with a load test shows its figures per URL (here: one of the seeded tasks).
            loaded = apps[0]
            await page.goto(f"{gateway.url}/dashboard/tasks/{loaded.task_id}")  # the tab keeps the token
            rows = page.locator("#load tbody tr")
            await expect(rows).to_have_count(len(loaded.load))
            for index, (p50, p99, errors, requests) in enumerate(loaded.load):
                cells = await rows.nth(index).locator("td").all_inner_texts()
                assert cells[1:3] == [str(requests), str(errors)]
                assert cells[4:6] == [f"{p50:.1f}", f"{p99:.1f}"]
            load_path = tmp_path / "dashboard-task-load.png"
            await page.screenshot(path=str(load_path), full_page=True)
            print(f"screenshot: {load_path}")
        finally:
            await browser.close()


@needs_browser
async def test_the_study_view_opens_the_apps_behind_a_heatmap_cell_and_an_apps_page_its_proofs(
    gateway: Gateway, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    apps = study.seeded(random.Random(21))
    for app in apps[:3]:  # an offline dependency audit: the view says which tasks it skipped and why
        app.static_tools = [
            ToolRun(tool="pip-audit", status="skipped", reason="advisory database unreachable")
        ]
    await study.seed(gateway.settings.database_url, apps)
    report = (await gateway.http.get("/api/reports/models", params={"batch": study.BATCH})).json()
    cell = next(row for row in report["families"] if (row["model_slug"], row["family"]) == ("model-a", "xss"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=LAPTOP)
            await page.goto(f"{gateway.url}/dashboard/batches")
            field = page.get_by_label("Bearer token")
            await field.fill(str(gateway.token))
            await field.press("Enter")
            batches = page.locator("#batches tbody tr")
            await expect(batches).to_have_count(1)
            await batches.get_by_role("link", name="report").click()
            await expect(page.get_by_role("heading", name="Model comparison")).to_be_focused()
            await expect(page.get_by_label("Batch", exact=True)).to_have_value(study.BATCH)

            # The verdict table: one row per model, each cell the API's share.
            for row in report["verdicts"]:
                cells = page.locator(f"#verdicts tbody tr[data-model='{row['model_slug']}'] button.cell")
                await expect(cells).to_have_count(4)
                works = row["works"]
                await expect(cells.first).to_contain_text(f"{works['yes']}/{works['known']}")
            # The tools that did not run in full: the API's one shortfall, as a row.
            [short] = report["tools_not_in_full"]
            assert (short["tool"], short["tasks"], short["of_tasks"]) == ("pip-audit", 3, len(apps))
            cells = page.locator("#short-tools tbody tr td")
            await expect(cells).to_have_text(
                ["pip-audit", "static", f"skipped in 3 of {len(apps)} tasks", "advisory database unreachable"]
            )
            # The heatmap: a row per model, a column per family any app has; the cell opens its apps.
            await expect(page.locator("#heatmap tbody tr")).to_have_count(len(report["verdicts"]))
            columns = [
                c for c in report["family_columns"] if any(r["family"] == c["id"] for r in report["families"])
            ]
            await expect(page.locator("#heatmap thead th")).to_have_count(1 + len(columns))
            button = page.locator("#heatmap tbody tr[data-model='model-a'] td[data-family='xss'] button")
            await expect(button).to_have_text(f"{cell['apps_affected']} ({cell['apps_confirmed']})")
            await button.focus()
            await page.keyboard.press("Enter")
            detail = page.locator("#cell-detail")
            await expect(detail).to_be_focused()
            listed = detail.locator("li[data-app]")
            await expect(listed).to_have_count(cell["apps_affected"])
            assert sorted(
                int(n) for n in await listed.evaluate_all("items => items.map(i => i.dataset.app)")
            ) == sorted(app["app_number"] for app in cell["affected"])
            first = detail.locator(f"li[data-app='{cell['affected'][0]['app_number']}']")
            await expect(first.locator("li.finding").first).to_contain_text("xss-reflected")
            await expect(first.locator(".proof").first).to_contain_text("it broke")
            assert await page.evaluate(UNLABELLED) == []
            path = tmp_path / "dashboard-study.png"
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")

            # A verdict cell opens every app of the model with its answers.
            model_b = next(row for row in report["verdicts"] if row["model_slug"] == "model-b")
            await page.locator(
                "#verdicts tbody tr[data-model='model-b'] button[data-measure='works']"
            ).click()
            await expect(detail.locator("li[data-app]")).to_have_count(model_b["apps"])

            # An app's page: its verdicts, the proof behind `exploitable`, its runs.
            broken = next(a for a in apps if a.exploitable == "yes" and any(f.proof for f in a.findings))
            await page.goto(f"{gateway.url}/dashboard/apps/{broken.model}/{broken.number}")
            await expect(
                page.get_by_role("heading", name=f"{broken.model} / app{broken.number}")
            ).to_be_visible()
            await expect(page.locator("#app-verdicts tbody tr")).to_have_count(1)
            await expect(page.locator("#app-verdicts tbody tr td").nth(3)).to_have_text("yes")
            await expect(page.locator("#proofs .proof")).to_have_count(1)
            await expect(page.locator("#proofs")).to_contain_text("GET /x?xss-reflected → 500")
            await expect(page.locator("#history tbody tr")).to_have_count(1)
            path = tmp_path / "dashboard-app.png"
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot: {path}")
        finally:
            await browser.close()
