-- examples/web/app.sql — the equipment inspection app that the web example (server.py) shows.
-- Run it once, as a lowcode administrator (e.g. the database owner or a superuser), in the
-- database the server connects to:
--
--   psql -d inspection -v ON_ERROR_STOP=1 -f examples/web/app.sql
--
-- It creates: the app `inspection`; its form `fault_report` (JSON Schema 2020-12, with a nested
-- object `site` and an array `photos`); the form's UI schema (labels, help, widgets, the order of
-- the nested fields, in English and Chinese); a workflow whose rule puts every fault of severity
-- 3 or more into the claim pool `engineers` as a task `fix` with the outcomes `fixed` and
-- `cannot_fix`; and the login role `lowcode_web` the server connects as, granted `act_as`
-- (it says who acts, per request, with SET LOCAL lowcode.actor), `submit`, `read_all` and `claim`.

\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS lowcode;

SELECT lowcode.create_app('inspection', 'Equipment inspection');

-- The author's order of the fields is the order they are written in here (form_schema returns it
-- in "order"; jsonb itself keeps no key order).
SELECT lowcode.define_form('inspection', 'fault_report', $json${
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Fault report",
  "type": "object",
  "required": ["machine", "severity", "site"],
  "properties": {
    "machine":  {"type": "string", "pattern": "^M-[0-9]{3}$"},
    "severity": {"type": "integer", "minimum": 1, "maximum": 5},
    "category": {"type": "string", "enum": ["electrical", "mechanical", "hydraulic"]},
    "site": {
      "type": "object",
      "required": ["plant", "building"],
      "properties": {
        "plant":    {"type": "string", "minLength": 1},
        "building": {"type": "string", "minLength": 2},
        "room":     {"type": "string", "maxLength": 20}
      }
    },
    "description": {"type": "string", "maxLength": 2000},
    "reported_at": {"type": "string", "format": "date-time"},
    "photos": {
      "type": "array",
      "maxItems": 5,
      "items": {"type": "string", "pattern": "^[a-z0-9_-]+[.](jpg|png)$"}
    }
  }
}$json$) AS version;

-- How the form looks: no new schema version. A text is a string or {"en": ..., "zh-CN": ...};
-- a missing translation falls back to English, then to the field name (reported_at has none).
SELECT lowcode.set_form_ui('inspection', 'fault_report', $json${
  "title": {"en": "Fault report", "zh-CN": "故障报告"},
  "description": {"en": "Report a fault on the factory floor. Severity 3 or more goes to the engineers on shift.",
                  "zh-CN": "报告车间的设备故障。严重程度 3 及以上的故障会交给当班工程师处理。"},
  "order": {"site": ["building", "room", "plant"]},
  "fields": {
    "machine": {
      "label": {"en": "Machine", "zh-CN": "设备编号"},
      "help": {"en": "As on the machine's plate, e.g. M-042", "zh-CN": "设备铭牌上的编号，例如 M-042"},
      "placeholder": "M-000"
    },
    "severity": {
      "label": {"en": "Severity", "zh-CN": "严重程度"},
      "help": {"en": "1 (cosmetic) to 5 (the line stopped)", "zh-CN": "1（外观问题）到 5（产线停止）"},
      "widget": "number"
    },
    "category": {
      "label": {"en": "Category", "zh-CN": "类别"},
      "widget": "radio",
      "enum_labels": {
        "electrical": {"en": "Electrical", "zh-CN": "电气"},
        "mechanical": {"en": "Mechanical", "zh-CN": "机械"},
        "hydraulic":  {"en": "Hydraulic", "zh-CN": "液压"}
      }
    },
    "site":          {"label": {"en": "Where", "zh-CN": "地点"}},
    "site.plant":    {"label": {"en": "Plant", "zh-CN": "工厂"}},
    "site.building": {"label": {"en": "Building", "zh-CN": "楼栋"}, "placeholder": "B2"},
    "site.room":     {"label": {"en": "Room"}},
    "description": {
      "label": {"en": "What happened", "zh-CN": "故障描述"},
      "widget": "textarea"
    },
    "reported_at": {"widget": "datetime"},
    "photos": {
      "label": {"en": "Photos", "zh-CN": "照片"},
      "help": {"en": "File names, e.g. valve.jpg", "zh-CN": "文件名，例如 valve.jpg"}
    }
  }
}$json$);

SELECT lowcode.define_workflow('inspection', 'fault_report', $json${
  "states": {
    "open": {"initial": true},
    "resolved": {"final": true},
    "escalated": {"final": true}
  },
  "transitions": [
    {"name": "resolve", "from": "open", "to": "resolved", "when": {"required": ["resolution"]}}
  ],
  "rules": [
    {"name": "route", "on": "created", "when": {"properties": {"severity": {"minimum": 3}}},
     "then": [{"task": {"name": "fix", "title": "Fix the machine", "pool": "engineers", "due": "1 day",
                        "outcomes": ["fixed", "cannot_fix"]}}]},
    {"name": "fixed", "on": "task_completed:fix", "outcome": "fixed",
     "then": [{"set": {"resolution": "fixed"}}, {"transition": "resolved"}]},
    {"name": "cannot_fix", "on": "task_completed:fix", "outcome": "cannot_fix",
     "then": [{"transition": "escalated"}]}
  ]
}$json$) AS workflow_version;

SELECT lowcode.publish('inspection') AS views;

-- The role the web server connects as. It acts for the signed-in user (act_as), and everything
-- it does is checked against its own privileges: it may submit, read the app's records and
-- claim and complete its tasks.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lowcode_web') THEN
        CREATE ROLE lowcode_web LOGIN;
    END IF;
END $$;
SELECT lowcode.grant('inspection', 'lowcode_web', ARRAY['act_as', 'submit', 'read_all', 'claim']);
