"""tests/browser/test_web.py — the web example (examples/web) in headless Chromium.

scripts/browser.sh starts a cluster with the example app (examples/web/app.sql), the example
server, and then this file:

    python tests/browser/test_web.py [TEST...]     (default: every test, in order)

Environment (browser.sh sets it): LOWCODE_WEB_URL (the example server), LOWCODE_BROWSER_DSN
(libpq string for checks in the database, as an administrator), LOWCODE_BROWSER_ARTIFACTS
(screenshots), CHROMIUM (the system browser; Playwright never downloads one).

Tests: form_in_authors_order, client_errors, database_errors_on_fields, submit_record_and_task,
claim_race, stale_page, zh_cn, other_drafts (each one's docstring says what it checks).

The tests run in order and share what they made (the record of the submit test is the one whose
task the users race for). Each test's screenshots are <artifacts>/<NN>-<test>-<what>.png; a
failing test also leaves <artifacts>/FAILED-<test>-<page>.png of every page it had open.
Last line: `browser: N passed, N failed`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import traceback
from collections import OrderedDict
from pathlib import Path

import psycopg
from playwright.async_api import Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[2]
URL = os.environ.get("LOWCODE_WEB_URL", "http://127.0.0.1:29581")
DSN = os.environ.get("LOWCODE_BROWSER_DSN", "dbname=inspection")
ARTIFACTS = Path(os.environ.get("LOWCODE_BROWSER_ARTIFACTS", ROOT / "target" / "browser-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
APP, FORM = "inspection", "fault_report"
FORM_URL = f"{URL}/forms/{APP}/{FORM}"
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine may be slow to start the page

# The author's order, as written in examples/web/app.sql, and the order the UI schema gives the
# nested object `site`.
AUTHOR_ORDER = ["machine", "severity", "category", "site", "description", "reported_at", "photos"]
AUTHOR_SITE_ORDER = ["plant", "building", "room"]
UI_SITE_ORDER = ["building", "room", "plant"]

# What the tests pass on to each other.
shared: dict = {}


# --- helpers -------------------------------------------------------------------------------------


class Failed(AssertionError):
    pass


def check(cond, what: str):
    if not cond:
        raise Failed(what)


def db(query: str, params: tuple = ()):
    """One statement as the administrator; all rows."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def db1(query: str, params: tuple = ()):
    rows = db(query, params)
    return rows[0][0] if rows else None


def record_count() -> int:
    return db1("SELECT count(*) FROM lowcode.records WHERE app = %s AND form = %s", (APP, FORM))


def app_sql_schema() -> OrderedDict:
    """The fault report's schema as app.sql defines it, keys in the author's order."""
    text = (ROOT / "examples" / "web" / "app.sql").read_text()
    m = re.search(r"define_form\('inspection', 'fault_report', \$json\$(.*?)\$json\$", text, re.S)
    check(m, "app.sql defines inspection.fault_report")
    return json.loads(m.group(1), object_pairs_hook=OrderedDict)


class Harness:
    def __init__(self, browser):
        self.browser = browser
        self.contexts = []
        self.pages: dict[str, Page] = {}
        self.errors: list[str] = []
        self.test = ""
        self.number = 0

    async def page_for(self, user: str, locale: str = "en") -> Page:
        """A browser context of its own (own cookies) signed in as `user` through the login page."""
        ctx = await self.browser.new_context(locale=locale, viewport={"width": 1100, "height": 900})
        ctx.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(ctx)
        page = await ctx.new_page()
        page.on("pageerror", lambda e, u=user: self.errors.append(f"{u}: {e}"))
        self.pages[user] = page
        await page.goto(f"{URL}/login")
        await expect(page.locator("#no-passwords")).to_contain_text("no passwords")
        await page.fill("#user", user)
        await page.click("#login")
        await expect(page.locator("#user-name")).to_have_text(user)
        return page

    async def shot(self, page: Page, what: str):
        await page.screenshot(path=str(ARTIFACTS / f"{self.number:02d}-{self.test}-{what}.png"), full_page=True)

    async def close(self, failed: bool):
        if failed:
            for user, page in self.pages.items():
                try:
                    await page.screenshot(path=str(ARTIFACTS / f"FAILED-{self.test}-{user}.png"), full_page=True)
                except Exception:  # noqa: BLE001 — a closed page has nothing to show
                    pass
        for ctx in self.contexts:
            await ctx.close()
        self.contexts, self.pages = [], {}


async def open_form(page: Page):
    await page.goto(FORM_URL)
    await expect(page.locator("form.rjsf")).to_be_visible()


async def dom_order(page: Page, ids: list[str]) -> list[str]:
    """The given field ids sorted by where their elements are in the page (missing ones left out)."""
    return await page.evaluate(
        """(ids) => {
            const el = (id) => document.getElementById(id) || document.querySelector(`[id^="${id}-"]`);
            return ids.filter((id) => el(id))
                      .sort((a, b) => (el(a).compareDocumentPosition(el(b)) & Node.DOCUMENT_POSITION_FOLLOWING) ? -1 : 1);
        }""",
        ids,
    )


async def label_of(page: Page, field_id: str) -> str:
    """The visible label of a field: its <label for=...>, or the legend/title of a fieldset."""
    label = page.locator(f'label[for="{field_id}"]')
    if await label.count():
        text = await label.first.inner_text()
    else:
        text = await page.locator(f"#{field_id}__title").first.inner_text()
    return text.replace("*", "").strip()


async def shown_errors(page: Page) -> dict[str, str]:
    """Every field error shown: {element id: text}."""
    return await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[id$="__error"]')]
                 .filter((e) => e.offsetParent !== null && e.textContent.trim() !== '')
                 .map((e) => [e.id, e.textContent.trim()]))"""
    )


def error_id(pointer: str) -> str:
    """The RJSF id of the error element of a JSON pointer: /site/building -> root_site_building__error."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []
    return "_".join(["root", *parts]) + "__error"


BAD = {  # wrong in the browser's eyes and in the database's
    "machine": "X-1",  # pattern
    "severity": "9",  # maximum 5
    "site.building": "A",  # minLength 2 (and site.plant, required, left empty)
    "photos": ["valve.jpg", "bad name.gif"],  # the second breaks the items' pattern
}
BAD_FIELDS = {
    "root_machine__error",
    "root_severity__error",
    "root_site_building__error",
    "root_site_plant__error",
    "root_photos_1__error",
}


async def fill_bad(page: Page):
    """Fill the fault report in the author's order, with the mistakes of BAD."""
    for name in AUTHOR_ORDER:
        if name == "machine":
            await page.fill("#root_machine", BAD["machine"])
        elif name == "severity":
            await page.fill("#root_severity", BAD["severity"])
        elif name == "category":
            await page.get_by_label("Mechanical").check()
        elif name == "site":
            for sub in UI_SITE_ORDER:
                if sub == "building":
                    await page.fill("#root_site_building", BAD["site.building"])
        elif name == "description":
            await page.fill("#root_description", "Oil under the press")
        elif name == "photos":
            for i, photo in enumerate(BAD["photos"]):
                await page.click("#root_photos__add")
                await page.fill(f"#root_photos_{i}", photo)


# --- the tests -----------------------------------------------------------------------------------


async def test_form_in_authors_order(h: Harness):
    """The form is rendered from form_schema: the author's field order, the UI schema's labels,
    help, widgets and nested order, the Ajv class of the form's draft."""
    spec = db1("SELECT lowcode.form_schema(%s, %s)", (APP, FORM))
    check(spec["order"][""] == AUTHOR_ORDER, f"form_schema's order is the author's: {spec['order']}")
    # (site's order: the author's, or already the UI schema's, which overrides it)
    check(spec["order"].get("site") in (AUTHOR_SITE_ORDER, UI_SITE_ORDER), f"form_schema's order of site: {spec['order']}")
    check(spec["draft"].startswith("https://json-schema.org/draft/2020-12/schema"), f"draft: {spec['draft']}")
    check(spec["schema"].get("$schema", "").startswith("https://json-schema.org/draft/2020-12/schema"), "explicit $schema")

    page = await h.page_for("carol")
    await open_form(page)
    await h.shot(page, "form")
    check(await page.inner_text("#validator-name") == "Ajv2020", "the 2020-12 form is validated with Ajv2020")
    check(await page.inner_text("#form-version") == str(spec["version"]), "the page shows the version it loaded")
    order = await dom_order(page, [f"root_{n}" for n in AUTHOR_ORDER])
    check(order == [f"root_{n}" for n in AUTHOR_ORDER], f"fields in the author's order: {order}")
    site = await dom_order(page, [f"root_site_{n}" for n in AUTHOR_SITE_ORDER])
    check(site == [f"root_site_{n}" for n in UI_SITE_ORDER], f"site's fields in the UI schema's order: {site}")
    want = {
        "root_machine": "Machine",
        "root_severity": "Severity",
        "root_category": "Category",
        "root_site": "Where",
        "root_site_plant": "Plant",
        "root_site_building": "Building",
        "root_site_room": "Room",
        "root_description": "What happened",
        "root_reported_at": "reported_at",  # no label in the UI schema: the field's name
        "root_photos": "Photos",
    }
    for field, label in want.items():
        got = await label_of(page, field)
        check(got == label, f"{field} is labelled {label!r}, not {got!r}")
    await expect(page.locator("#root__title")).to_have_text("Fault report")
    await expect(page.locator("#root_machine__help")).to_contain_text("As on the machine's plate")
    await expect(page.locator("#root_machine")).to_have_attribute("placeholder", "M-000")
    check(await page.locator("#root_description").evaluate("e => e.tagName") == "TEXTAREA", "description: textarea")
    check(await page.get_attribute("#root_severity", "type") == "number", "severity: a number input")
    radios = page.locator('input[type=radio][name="root_category"]')
    await expect(radios).to_have_count(3)
    for label in ("Electrical", "Mechanical", "Hydraulic"):
        await expect(page.get_by_label(label)).to_have_count(1)
    check(await page.get_attribute("#root_reported_at", "type") == "datetime-local", "reported_at: datetime widget")


async def test_client_errors(h: Harness):
    """With client validation on, the browser finds the mistakes and sends nothing."""
    page = await h.page_for("carol")
    await open_form(page)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/records" in r.url else None)
    before = record_count()
    await fill_bad(page)
    await page.click("button[type=submit]")
    await expect(page.locator("#root_machine__error")).to_be_visible()
    shown = await shown_errors(page)
    await h.shot(page, "client-errors")
    check(set(shown) == BAD_FIELDS, f"client errors on {sorted(BAD_FIELDS)}, got {sorted(shown)}")
    check(posts == [], f"nothing was sent: {posts}")
    check(record_count() == before, "no record was written")
    shared["client_errors"] = shown


async def test_database_errors_on_fields(h: Harness):
    """With client validation off, the same mistakes go to the database, whose errors (23514, a
    JSON DETAIL) are shown on the same fields: nested object fields and array items too."""
    page = await h.page_for("carol")
    await open_form(page)
    await fill_bad(page)
    await page.uncheck("#client-validation")
    before = record_count()
    async with page.expect_response(lambda r: r.url.endswith("/records") and r.request.method == "POST") as info:
        await page.click("button[type=submit]")
    response = await info.value
    check(response.status == 422, f"the server answers 422 to a refused record, not {response.status}")
    answer = await response.json()
    sent = json.loads(response.request.post_data)["data"]
    await expect(page.locator("#db-errors")).to_be_visible()
    shown = await shown_errors(page)
    await h.shot(page, "database-errors")
    check(answer.get("sqlstate") == "23514", f"SQLSTATE 23514: {answer}")
    check(record_count() == before, "no record was written")
    check(set(shown) == BAD_FIELDS, f"database errors on {sorted(BAD_FIELDS)}, got {sorted(shown)}")
    if "client_errors" in shared:
        check(set(shown) == set(shared["client_errors"]), "the database's errors are on the client's fields")
    # Each issue the database finds in what was sent is shown on its field, in its words.
    issues = db("SELECT field, message FROM lowcode.validate(%s, %s, %s)", (APP, FORM, json.dumps(sent)))
    check(len(issues) >= len(BAD_FIELDS), f"validate() finds the mistakes: {issues}")
    for field, message in issues:
        eid = error_id(field)
        check(message in shown.get(eid, ""), f"{field}: {message!r} shown in #{eid} ({shown.get(eid)!r})")
    for issue in answer["issues"]:
        check(issue["message"] in shown.get(error_id(issue["field"]), ""), f"shown: {issue}")


async def test_submit_record_and_task(h: Harness):
    """A good report is stored; the page shows the record and the task the workflow made."""
    page = await h.page_for("carol")
    await open_form(page)
    await fill_bad(page)
    await page.fill("#root_machine", "M-042")
    await page.fill("#root_severity", "4")
    await page.fill("#root_site_building", "B2")
    await page.fill("#root_site_plant", "Plant 7")
    await page.fill("#root_photos_1", "leak.png")
    await page.click("button[type=submit]")
    await expect(page.locator("#record")).to_be_visible()
    await h.shot(page, "record")
    record_id = int(await page.get_attribute("#record", "data-record"))
    await expect(page.locator("#record-state")).to_have_text("open")
    row = page.locator("#record-tasks tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Fix the machine")
    await expect(row).to_contain_text("engineers")
    task_id = int(await row.get_attribute("data-task"))
    data, state = db("SELECT data, state FROM lowcode.records WHERE id = %s", (record_id,))[0]
    check(state == "open", f"the record is open: {state}")
    check(data["site"] == {"building": "B2", "plant": "Plant 7"}, f"nested data stored: {data}")
    check(data["photos"] == ["valve.jpg", "leak.png"], f"array stored: {data}")
    check(data["machine"] == "M-042" and data["severity"] == 4 and data["category"] == "mechanical", f"{data}")
    task = db("SELECT name, pool, status FROM lowcode.tasks WHERE id = %s AND record_id = %s", (task_id, record_id))
    check(task == [("fix", "engineers", "open")], f"the workflow's task: {task}")
    actor = db1("SELECT actor FROM lowcode.history WHERE record_id = %s ORDER BY id LIMIT 1", (record_id,))
    check(actor == "carol", f"the history names the signed-in user as the actor: {actor}")
    shared["record"], shared["task"] = record_id, task_id


async def race(h: Harness, a: Page, b: Page, task_id: int, round_: int) -> str:
    """Both users click Claim on the task at the same moment; returns the winner's name."""
    for page in (a, b):
        await page.click("#refresh")
        await expect(page.locator(f'#claimable tr[data-task="{task_id}"] button.claim')).to_be_visible()
    await asyncio.gather(
        a.click(f'#claimable tr[data-task="{task_id}"] button.claim'),
        b.click(f'#claimable tr[data-task="{task_id}"] button.claim'),
    )
    for page in (a, b):
        await expect(page.locator(f'#notice[data-task="{task_id}"]')).to_be_visible()
    outcome = {}
    for name, page in (("alice", a), ("bob", b)):
        outcome[name] = (await page.get_attribute("#notice", "class"), await page.inner_text("#notice"))
    await h.shot(a, f"race{round_}-alice")
    await h.shot(b, f"race{round_}-bob")
    winners = [n for n, (cls, _) in outcome.items() if "ok" in cls.split()]
    losers = [n for n, (cls, _) in outcome.items() if "error" in cls.split()]
    check(len(winners) == 1 and len(losers) == 1, f"exactly one winner: {outcome}")
    check("claimed by someone else" in outcome[losers[0]][1], f"the loser is told: {outcome[losers[0]][1]!r}")
    claimed_by = db("SELECT status, claimed_by FROM lowcode.tasks WHERE id = %s", (task_id,))
    check(claimed_by == [("claimed", winners[0])], f"the task is the winner's: {claimed_by}")
    return winners[0]


async def test_claim_race(h: Harness):
    """Two users (two browser contexts) claim the same task at the same moment: exactly one wins,
    the other is told; the winner completes it with one of its outcomes and the workflow goes on."""
    check("task" in shared, "the submit test made a task")
    # Two more severe faults, so that the race runs three times.
    extra = [
        db1("SELECT lowcode.submit(%s, %s, %s)", (APP, FORM, json.dumps(
            {"machine": f"M-10{i}", "severity": 5, "site": {"plant": "P", "building": "B1"}})))
        for i in range(2)
    ]
    tasks = [shared["task"]] + [db1("SELECT id FROM lowcode.tasks WHERE record_id = %s", (r,)) for r in extra]
    alice = await h.page_for("alice")
    bob = await h.page_for("bob")
    for page in (alice, bob):
        await page.goto(f"{URL}/inbox")
    winners = []
    for n, task_id in enumerate(tasks, 1):
        winners.append(await race(h, alice, bob, task_id, n))
    pages = {"alice": alice, "bob": bob}
    winner, loser = winners[0], "bob" if winners[0] == "alice" else "alice"
    wp, lp = pages[winner], pages[loser]
    task_id = shared["task"]
    await lp.click("#refresh")
    await expect(lp.locator(f'#claimable tr[data-task="{task_id}"]')).to_have_count(0)
    await expect(lp.locator(f'#mine tr[data-task="{task_id}"]')).to_have_count(0)
    await wp.click("#refresh")
    mine = wp.locator(f'#mine tr[data-task="{task_id}"]')
    await expect(mine).to_be_visible()
    buttons = await mine.locator("button.complete").evaluate_all("bs => bs.map(b => b.dataset.outcome)")
    check(buttons == ["fixed", "cannot_fix"], f"the task's outcomes as buttons: {buttons}")
    await mine.locator('button.complete[data-outcome="fixed"]').click()
    await expect(wp.locator("#notice")).to_have_class(re.compile(r"\bok\b"))
    await expect(wp.locator(f'#mine tr[data-task="{task_id}"]')).to_have_count(0)
    await h.shot(wp, "completed")
    task = db("SELECT status, outcome, completed_by FROM lowcode.tasks WHERE id = %s", (task_id,))
    check(task == [("completed", "fixed", winner)], f"completed by the winner: {task}")
    record = db("SELECT state, data->>'resolution' FROM lowcode.records WHERE id = %s", (shared["record"],))
    check(record == [("resolved", "fixed")], f"the workflow resolved the fault: {record}")


async def test_stale_page(h: Harness):
    """A page loaded before the form changed submits with expected_version and is refused
    (40001) with a message; reloaded, it submits."""
    page = await h.page_for("carol")
    await open_form(page)
    loaded = int(await page.inner_text("#form-version"))
    schema = app_sql_schema()
    schema["properties"]["shift"] = {"type": "string", "enum": ["early", "late", "night"]}
    newer = db1("SELECT lowcode.define_form(%s, %s, %s)", (APP, FORM, json.dumps(schema)))
    check(newer == loaded + 1, f"a new version: {loaded} -> {newer}")
    before = record_count()
    await page.fill("#root_machine", "M-777")
    await page.fill("#root_severity", "1")
    await page.fill("#root_site_building", "B9")
    await page.fill("#root_site_plant", "Plant 9")
    async with page.expect_response(lambda r: r.url.endswith("/records")) as info:
        await page.click("button[type=submit]")
    response = await info.value
    check(response.status == 409, f"409 for a stale page, not {response.status}")
    check((await response.json()).get("sqlstate") == "40001", "SQLSTATE 40001")
    await expect(page.locator("#stale")).to_be_visible()
    await expect(page.locator("#stale")).to_contain_text(f"changed after you opened it (you have version {loaded})")
    await h.shot(page, "stale")
    check(record_count() == before, "nothing was saved")
    await page.click("#reload")
    await expect(page.locator("#form-version")).to_have_text(str(newer))
    await expect(page.locator("#root_shift")).to_be_visible()
    await page.fill("#root_machine", "M-777")
    await page.fill("#root_severity", "1")
    await page.fill("#root_site_building", "B9")
    await page.fill("#root_site_plant", "Plant 9")
    await page.click("button[type=submit]")
    await expect(page.locator("#record")).to_be_visible()
    check(record_count() == before + 1, "saved after the reload")
    version = db1(
        "SELECT v.version FROM lowcode.records r JOIN lowcode.form_versions v ON v.id = r.form_version_id"
        " WHERE r.id = %s", (int(await page.get_attribute("#record", "data-record")),))
    check(version == newer, f"validated against the new version: {version}")


async def test_zh_cn(h: Harness):
    """The form in zh-CN: labels, help, enum labels, title and RJSF's buttons in Chinese; a
    missing translation falls back to English, then to the field's name."""
    page = await h.page_for("dave", locale="zh-CN")
    await open_form(page)
    await page.click("#locale-zh-CN")
    await expect(page.locator("#root__title")).to_have_text("故障报告")
    await h.shot(page, "zh-CN")
    want = {
        "root_machine": "设备编号",
        "root_severity": "严重程度",
        "root_category": "类别",
        "root_site": "地点",
        "root_site_plant": "工厂",
        "root_site_building": "楼栋",
        "root_site_room": "Room",  # no zh-CN label: English
        "root_description": "故障描述",
        "root_reported_at": "reported_at",  # no label at all: the field's name
        "root_photos": "照片",
    }
    for field, label in want.items():
        got = await label_of(page, field)
        check(got == label, f"zh-CN: {field} is labelled {label!r}, not {got!r}")
    await expect(page.locator("#root_machine__help")).to_contain_text("设备铭牌上的编号")
    for label in ("电气", "机械", "液压"):
        await expect(page.get_by_label(label)).to_have_count(1)
    await expect(page.locator("button[type=submit]")).to_have_text("提交")
    await expect(page.locator("#root_photos__add")).to_have_attribute("title", "添加")
    # The database's errors land on the fields here too.
    await page.uncheck("#client-validation")
    await page.fill("#root_site_building", "A")
    await page.click("button[type=submit]")
    await expect(page.locator("#root_site_building__error")).to_be_visible()
    await expect(page.locator("#db-errors")).to_contain_text("数据库拒绝了这条记录")
    await h.shot(page, "zh-CN-errors")
    await page.click("#locale-en")
    await expect(page.locator('label[for="root_machine"]')).to_contain_text("Machine")


PLACE = {  # a shared definition, registered once per draft
    "type": "object",
    "required": ["plant"],
    "properties": {"plant": {"type": "string", "minLength": 1}, "room": {"type": "string", "maxLength": 4}},
}
DRAFTS = {  # form -> (its "$schema", or None for lowcode's default, the Ajv class the page picks)
    "visit_log": ("http://json-schema.org/draft-07/schema#", "Ajv"),
    "checklist": ("https://json-schema.org/draft/2019-09/schema", "Ajv2019"),
    "parts_order": (None, "Ajv2020"),
}


async def test_other_drafts(h: Harness):
    """Any form renders, whatever its draft: draft-07, 2019-09 and 2020-12 (the default) forms,
    each with a "$ref" into its own definitions and one to a registered schema (form_schema
    bundles it), no UI schema (labels are the field names). The Ajv class follows the draft; the
    client's and the database's errors land on the same fields, also inside the referenced ones."""
    for form, (draft, _) in DRAFTS.items():
        uri = f"https://schemas.example.com/{form}/place.json"
        place = dict(PLACE, **({"$schema": draft} if draft else {}))
        db("SELECT lowcode.register_schema(%s, %s)", (uri, json.dumps(place)))
        defs = "definitions" if draft and "draft-07" in draft else "$defs"
        schema = OrderedDict([("$schema", draft)] if draft else [])
        schema.update({
            "type": "object",
            "required": ["code", "place"],
            defs: {"code": {"type": "string", "maxLength": 3}},
            "properties": OrderedDict([
                ("code", {"$ref": f"#/{defs}/code"}),
                ("place", {"$ref": uri}),
                ("count", {"type": "integer", "minimum": 1}),
            ]),
        })
        db("SELECT lowcode.define_form(%s, %s, %s::text)", (APP, form, json.dumps(schema)))
    page = await h.page_for("erin")
    for form, (draft, ajv) in DRAFTS.items():
        await page.goto(f"{URL}/forms/{APP}/{form}")
        await expect(page.locator("form.rjsf")).to_be_visible()
        check(await page.inner_text("#validator-name") == ajv, f"{form}: {ajv}")
        order = await dom_order(page, ["root_code", "root_place", "root_count"])
        check(order == ["root_code", "root_place", "root_count"], f"{form}: the author's order: {order}")
        for field, label in (("root_code", "code"), ("root_place_plant", "plant"), ("root_count", "count")):
            got = await label_of(page, field)
            check(got == label, f"{form}: {field} labelled by its name {label!r}, not {got!r}")
        await page.fill("#root_code", "ABCD")
        await page.fill("#root_place_room", "12345")
        await page.fill("#root_count", "0")
        want = {"root_code__error", "root_place_plant__error", "root_place_room__error", "root_count__error"}
        await page.click("button[type=submit]")
        await expect(page.locator("#root_code__error")).to_be_visible()
        client = await shown_errors(page)
        check(set(client) == want, f"{form}: client errors on {sorted(want)}, got {sorted(client)}")
        await page.uncheck("#client-validation")
        await page.click("button[type=submit]")
        await expect(page.locator("#db-errors")).to_be_visible()
        shown = await shown_errors(page)
        check(set(shown) == want, f"{form}: database errors on {sorted(want)}, got {sorted(shown)}")
        await h.shot(page, form)
        await page.check("#client-validation")
        await page.fill("#root_code", "ABC")
        await page.fill("#root_place_plant", "Plant 1")
        await page.fill("#root_place_room", "12")
        await page.fill("#root_count", "2")
        await page.click("button[type=submit]")
        await expect(page.locator("#record")).to_be_visible()
        record_id = int(await page.get_attribute("#record", "data-record"))
        data = db1("SELECT data FROM lowcode.records WHERE id = %s", (record_id,))
        check(data == {"code": "ABC", "place": {"plant": "Plant 1", "room": "12"}, "count": 2}, f"{form}: {data}")


TESTS = [
    ("form_in_authors_order", test_form_in_authors_order),
    ("client_errors", test_client_errors),
    ("database_errors_on_fields", test_database_errors_on_fields),
    ("submit_record_and_task", test_submit_record_and_task),
    ("claim_race", test_claim_race),
    ("stale_page", test_stale_page),
    ("zh_cn", test_zh_cn),
    ("other_drafts", test_other_drafts),
]


async def main(selected: list[str]) -> int:
    names = [n for n, _ in TESTS]
    unknown = [s for s in selected if s not in names]
    if unknown:
        print(f"no such test: {' '.join(unknown)} (tests: {' '.join(names)})", file=sys.stderr)
        return 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    passed = failed = 0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
        )
        h = Harness(browser)
        for number, (name, fn) in enumerate(TESTS, 1):
            if selected and name not in selected:
                continue
            h.test, h.number, h.errors = name, number, []
            start = time.monotonic()
            ok = False
            try:
                await asyncio.wait_for(fn(h), timeout=120)
                check(not h.errors, f"no JavaScript errors in the pages: {h.errors}")
                ok = True
            except Exception as e:  # noqa: BLE001 — every failure is reported, the next test runs
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                traceback.print_exc(limit=4, file=sys.stdout)
            await h.close(failed=not ok)
            took = time.monotonic() - start
            if ok:
                passed += 1
                print(f"ok      {name} ({took:.1f}s)")
            else:
                failed += 1
                print(f"FAILED  {name} ({took:.1f}s)")
            sys.stdout.flush()
        await browser.close()
    print(f"browser: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
