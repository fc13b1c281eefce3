"""Keeping Assay itself in shape: `make audit` (dependency_audit.py)."""
