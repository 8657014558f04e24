"""examples/web/server.py — forms and a task inbox in the browser, rendered from the database.

An EXAMPLE, not part of the extension. Everything the browser shows comes from lowcode:

  * a form page renders any form from lowcode.form_schema(app, form) (JSON Schema, the author's
    field order, the UI schema) with react-jsonschema-form; the database validates the submission
    and its errors (SQLSTATE 23514, a JSON DETAIL) are shown on their fields;
  * a stale page (the form changed since it was loaded) submits with expected_version and is
    refused (SQLSTATE 40001) with a message;
  * an inbox: lowcode.claimable_tasks(), lowcode.my_tasks(), lowcode.claim_task(task) (first
    wins), lowcode.complete_task(task, outcome).

Login is choosing a user name. THERE ARE NO PASSWORDS: anyone can act as anyone. The name is kept
in a plain cookie and becomes, per request, `SET LOCAL lowcode.actor = '<user>'` inside the
request's transaction. The server connects as ONE database role (lowcode_web in app.sql) that is
granted act_as, submit, read_all and claim in the app; the database checks that role's privileges
and records the user as the actor. A real deployment puts its own authentication in front.

Configuration (environment):
  LOWCODE_WEB_DSN    libpq connection string (default "dbname=inspection user=lowcode_web")
  LOWCODE_WEB_APP    the app whose forms the home page lists (default inspection)
  LOWCODE_WEB_USERS  comma-separated names offered on the login page (default alice,bob,carol)
  LOWCODE_WEB_HOST / LOWCODE_WEB_PORT   where to listen (default 127.0.0.1:8000)

Run: uvicorn --app-dir examples/web server:app --port 8000   (or: python examples/web/server.py)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
DSN = os.environ.get("LOWCODE_WEB_DSN", "dbname=inspection user=lowcode_web")
APP = os.environ.get("LOWCODE_WEB_APP", "inspection")
USERS = [u for u in os.environ.get("LOWCODE_WEB_USERS", "alice,bob,carol").split(",") if u]
COOKIE = "lowcode_web_user"
# User names: what lowcode accepts as an actor label is up to the app; the example keeps it simple.
USER_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


# --- the database -------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def issues_of(detail: str | None) -> list[dict]:
    """The issues of a 23514 DETAIL: {"app", "form", "issues": [...]} (or a bare list)."""
    try:
        parsed = json.loads(detail or "")
    except ValueError:
        return []
    if isinstance(parsed, dict):
        parsed = parsed.get("issues", [])
    return [i for i in parsed if isinstance(i, dict)] if isinstance(parsed, list) else []


def api_error(e: psycopg.Error) -> ApiError:
    """A database error as an HTTP answer the page can show."""
    diag = e.diag
    body = {
        "sqlstate": e.sqlstate,
        "message": diag.message_primary or str(e),
        "detail": diag.message_detail,
        "hint": diag.message_hint,
    }
    if e.sqlstate == "23514":  # check_violation: the data does not conform
        return ApiError(422, {**body, "error": "invalid", "issues": issues_of(diag.message_detail)})
    if e.sqlstate == "40001":  # serialization_failure: a stale form version
        return ApiError(409, {**body, "error": "stale"})
    if e.sqlstate == "42501":  # insufficient_privilege
        return ApiError(403, {**body, "error": "forbidden"})
    if e.sqlstate == "42704":  # undefined_object: no such app, form, record, task
        return ApiError(404, {**body, "error": "not_found"})
    if e.sqlstate in ("22023", "22004", "22P02"):
        return ApiError(400, {**body, "error": "bad_request"})
    return ApiError(500, {**body, "error": "database"})


async def run(user: str, query: str | sql.Composable, params: tuple = ()):
    """Run one statement for `user` in a transaction of its own; return the first column of the
    first row. Every statement's value is jsonb (or a scalar), so it goes to the page as it is."""
    try:
        async with await psycopg.AsyncConnection.connect(DSN) as conn:
            async with conn.transaction():
                await conn.execute(sql.SQL("SET LOCAL lowcode.actor = {}").format(sql.Literal(user)))
                cur = await conn.execute(query, params)
                row = await cur.fetchone()
                return row[0] if row else None
    except psycopg.Error as e:
        raise api_error(e) from e


# --- requests -----------------------------------------------------------------------------------


def json_response(body, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, media_type="application/json")


def current_user(request: Request) -> str | None:
    user = request.cookies.get(COOKIE)
    return user if user and USER_RE.match(user) else None


def api(handler):
    """An API endpoint: needs a signed-in user; database errors become JSON answers."""

    async def endpoint(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return json_response({"error": "login", "message": "sign in first"}, 401)
        try:
            return json_response(await handler(request, user))
        except ApiError as e:
            return json_response(e.body, e.status)

    return endpoint


def name_param(request: Request, key: str) -> str:
    value = request.path_params[key]
    if not NAME_RE.match(value):
        raise ApiError(400, {"error": "bad_request", "message": f"bad {key} name: {value!r}"})
    return value


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, {"error": "bad_request", "message": "a JSON object is expected"})
    return body


# The tasks of a record, as the server's role may see them (row-level security on lowcode.tasks).
RECORD_TASKS = """
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', t.id, 'name', t.name, 'title', t.title, 'pool', t.pool, 'assignee', t.assignee,
               'status', t.status, 'claimed_by', t.claimed_by, 'outcome', t.outcome,
               'due_at', t.due_at, 'created_at', t.created_at) ORDER BY t.id), '[]'::jsonb)
      FROM lowcode.tasks t WHERE t.record_id = %s"""


async def record_view(user: str, record_id: int) -> dict:
    record = await run(user, "SELECT to_jsonb(r) FROM lowcode.get_record(%s) r", (record_id,))
    tasks = await run(user, RECORD_TASKS, (record_id,))
    return {"record": record, "tasks": tasks}


async def session(request: Request) -> Response:
    return json_response({"user": current_user(request), "app": APP, "users": USERS})


async def login(request: Request) -> Response:
    try:
        body = await json_body(request)
    except ApiError as e:
        return json_response(e.body, e.status)
    user = str(body.get("user", "")).strip()
    if not USER_RE.match(user):
        return json_response(
            {"error": "bad_request", "message": "a user name is lowercase letters, digits, _ . -"}, 400
        )
    response = json_response({"user": user})
    response.set_cookie(COOKIE, user, httponly=True, samesite="strict")
    return response


async def logout(request: Request) -> Response:
    response = json_response({"user": None})
    response.delete_cookie(COOKIE)
    return response


@api
async def forms(request: Request, user: str):
    # Every form of the app the server's role may see (lowcode.forms is readable by app roles
    # where they hold a privilege; when it is not, the list is empty and a form is opened by URL).
    try:
        return await run(
            user,
            "SELECT coalesce(jsonb_agg(jsonb_build_object('form', name, 'title', title) ORDER BY name),"
            " '[]'::jsonb) FROM lowcode.forms WHERE app = %s",
            (APP,),
        )
    except ApiError as e:
        if e.status in (403, 500):
            return []
        raise


@api
async def form_schema(request: Request, user: str):
    app, form = name_param(request, "app"), name_param(request, "form")
    version = request.query_params.get("version")
    if version is not None and not version.isdigit():
        raise ApiError(400, {"error": "bad_request", "message": "version is a number"})
    spec = await run(
        user,
        "SELECT lowcode.form_schema(%s, %s, %s::int)",
        (app, form, int(version) if version else None),
    )
    if spec is None:
        raise ApiError(404, {"error": "not_found", "message": f"no form {app}.{form}"})
    return spec


@api
async def submit(request: Request, user: str):
    app, form = name_param(request, "app"), name_param(request, "form")
    body = await json_body(request)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ApiError(400, {"error": "bad_request", "message": "data must be a JSON object"})
    expected = body.get("expected_version")
    if expected is None:
        record_id = await run(user, "SELECT lowcode.submit(%s, %s, %s)", (app, form, Jsonb(data)))
    elif isinstance(expected, int):
        record_id = await run(
            user, "SELECT lowcode.submit(%s, %s, %s, %s::int)", (app, form, Jsonb(data), expected)
        )
    else:
        raise ApiError(400, {"error": "bad_request", "message": "expected_version is a number"})
    return await record_view(user, record_id)


@api
async def record(request: Request, user: str):
    return await record_view(user, int(request.path_params["id"]))


@api
async def inbox(request: Request, user: str):
    claimable = await run(
        user,
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id), '[]'::jsonb)"
        " FROM lowcode.claimable_tasks() t",
    )
    mine = await run(
        user,
        "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id), '[]'::jsonb)"
        " FROM lowcode.my_tasks() t",
    )
    return {"claimable": claimable, "mine": mine}


@api
async def claim(request: Request, user: str):
    task = int(request.path_params["id"])
    won = await run(user, "SELECT lowcode.claim_task(%s::bigint)", (task,))
    if not won:
        raise ApiError(
            409,
            {"error": "taken", "task": task, "message": f"task {task} was claimed by someone else first"},
        )
    return {"task": task, "won": True}


@api
async def complete(request: Request, user: str):
    task = int(request.path_params["id"])
    body = await json_body(request)
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or not outcome:
        raise ApiError(400, {"error": "bad_request", "message": "an outcome is needed"})
    await run(user, "SELECT lowcode.complete_task(%s::bigint, %s)", (task, outcome))
    return {"task": task, "outcome": outcome}


# --- the page -----------------------------------------------------------------------------------

SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lowcode</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<div id="root"><p class="loading">Loading…</p></div>
<noscript>This example needs JavaScript.</noscript>
__SCRIPT__
</body>
</html>
"""


async def page(request: Request) -> Response:
    if request.url.path != "/login" and current_user(request) is None:
        return RedirectResponse("/login?next=" + request.url.path, 303)
    if (STATIC / "app.js").exists():
        script = '<script src="/static/app.js"></script>'
    else:
        script = (
            '<p class="error">The page bundle is not built: run <code>npm ci &amp;&amp; npm run build</code>'
            " in examples/web.</p>"
        )
    return HTMLResponse(SHELL.replace("__SCRIPT__", script), headers={"cache-control": "no-store"})


routes = [
    Route("/api/session", session),
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/forms", forms),
    Route("/api/forms/{app}/{form}", form_schema),
    Route("/api/forms/{app}/{form}/records", submit, methods=["POST"]),
    Route("/api/records/{id:int}", record),
    Route("/api/inbox", inbox),
    Route("/api/tasks/{id:int}/claim", claim, methods=["POST"]),
    Route("/api/tasks/{id:int}/complete", complete, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/", page),
    Route("/login", page),
    Route("/inbox", page),
    Route("/forms/{app}/{form}", page),
    Route("/records/{id:int}", page),
]

app = Starlette(routes=routes)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("LOWCODE_WEB_HOST", "127.0.0.1"),
        port=int(os.environ.get("LOWCODE_WEB_PORT", "8000")),
        log_level=os.environ.get("LOWCODE_WEB_LOG", "info"),
    )
