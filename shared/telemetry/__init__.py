"""Telemetry: OpenTelemetry traces (and their local span files) and the metrics every service records."""
