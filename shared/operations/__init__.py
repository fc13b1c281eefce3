"""Running a service: settings, the exception root, logs, traces, metrics, process groups, redaction, target policy."""
