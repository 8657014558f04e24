-- bench/insp_workflow.sql — the inspection workflow of examples/inspection.sql on app insp's
-- form fault_wf: a severe fault gets a task in the engineers' pool with a 5-minute deadline
-- and an outbox event. Included by bench/setup.sql (make bench) and bench/citus.sql (make
-- bench-citus).
SELECT lowcode.define_workflow('insp', 'fault_wf', '{
  "states": {"open": {"initial": true}, "resolved": {"final": true}},
  "transitions": [{"name": "resolve", "from": "open", "to": "resolved", "when": {"required": ["resolution"]}}],
  "rules": [
    {"name": "route_severe", "on": "created", "when": {"properties": {"severity": {"minimum": 4}}},
     "then": [{"task": {"name": "fix", "pool": "engineers", "due": "5 minutes"}},
              {"emit": {"topic": "fault.severe"}}]},
    {"name": "fixed", "on": "task_completed:fix", "outcome": "fixed",
     "then": [{"set": {"resolution": "fixed"}}, {"transition": "resolved"}]},
    {"name": "overdue", "on": "deadline_passed:fix", "then": [{"emit": {"topic": "fault.overdue"}}]}
  ]}');
