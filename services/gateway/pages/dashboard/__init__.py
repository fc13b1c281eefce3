"""The dashboard: its public, data-free page (routes.py, page_files/) and the JSON routes only it needed so far:
a finding's source lines (source.py) and a task's result files (files.py)."""
