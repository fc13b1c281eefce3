"""Keys the result document must hold, as ARCHITECTURE.md's "Results on disk" names them."""

PRIMARY_KEYS = {
    "task_id",
    "model_slug",
    "app_number",
    "analysis_type",
    "timestamp",
    "metadata",
    "results",
    "summary",
    "verdicts",
    "waived_rules",
    "schema_version",
    "trace_id",
}
RESULTS_KEYS = {"findings", "tools_used", "tool_results", "raw_outputs", "summary", "success"}
SUMMARY_KEYS = {
    "total_findings",
    "services_executed",
    "tools_executed",
    "status",
    "from_cancelled_task",
    "severity_breakdown",
    "findings_by_tool",
}
