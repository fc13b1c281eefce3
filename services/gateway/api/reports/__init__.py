"""The model comparison: SQL queries, figures with confidence intervals, output formats and the HTTP routes."""
