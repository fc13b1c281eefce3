"""The task resource: `/api/analysis/run` and `/api/tasks/…` (findings, issues, diff, events, source, files, trace)."""
