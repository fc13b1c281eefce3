"""The app's source as the static tools see it: which files to analyze, their relative paths, and their lines.

Every tool is handed the same file lists, so the exclusions (dependencies, virtual environments, caches, build
output, minified bundles) are decided here once. Paths are POSIX and relative to the app folder, which is also
the working directory of every tool command.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from shared.results.findings import Finding, Origin, Severity, fingerprint
from shared.results.origins import classify_file
from shared.results.rule_table import is_security, rated, rule_cwe

# Folders whose content the app's authors did not write (or that tools create).
EXCLUDED_DIRS = frozenset(
    {
        "node_modules",
        ".venv",
        "venv",
        "env",
        ".env",
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "site-packages",
        "dist",
        "build",
        ".next",
        ".nuxt",
        "coverage",
        "htmlcov",
        ".idea",
        ".vscode",
    }
)
PYTHON_SUFFIXES = (".py",)
SCRIPT_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx")
TEMPLATE_SUFFIXES = (".html", ".htm", ".jinja", ".jinja2", ".j2", ".njk", ".ejs", ".hbs", ".handlebars")
SQL_SUFFIXES = (".sql",)  # schema and seed files (default accounts)
LANGUAGE_SUFFIXES = {
    "Python": PYTHON_SUFFIXES,
    "JavaScript": SCRIPT_SUFFIXES,
    "template": TEMPLATE_SUFFIXES,
    "SQL": SQL_SUFFIXES,
}
MINIFIED_MARKERS = (".min.js", ".bundle.js")  # vendored or built bundles: not the model's code


def app_files(app_dir: Path) -> list[str]:
    """Every file of the app outside the excluded folders, sorted, relative to `app_dir`."""
    found: list[str] = []
    for folder, subdirs, files in os.walk(app_dir):
        subdirs[:] = sorted(name for name in subdirs if name not in EXCLUDED_DIRS)
        base = Path(folder).relative_to(app_dir)
        found.extend((base / name).as_posix() for name in files if not (Path(folder) / name).is_symlink())
    return sorted(found)


class AppSource:
    """One app folder during one tool run: turns what a tool reports into findings anchored to source lines."""

    def __init__(self, app_dir: Path, tool: str, environment: str = "") -> None:
        self.app_dir = app_dir.resolve()
        self.tool = tool
        self.environment = (
            environment  # which of the app's dependencies the tool read (app_env.py), if it says
        )
        self._lines: dict[str, list[str]] = {}
        self._origins: dict[str, Origin] = {}

    def origin(self, rel_path: str | None) -> Origin:
        """Where the file comes from (shared/results/origins.py), judged once per run; `app` for no file."""
        if rel_path is None:
            return "app"
        if rel_path not in self._origins:
            self._origins[rel_path] = classify_file(self.app_dir, rel_path)
        return self._origins[rel_path]

    def relative(self, reported: str) -> str:
        """A path as a tool printed it (absolute, `./x` or relative to the app) → POSIX path relative to the app."""
        path = Path(reported)
        absolute = path if path.is_absolute() else self.app_dir / path
        try:
            return absolute.resolve().relative_to(self.app_dir).as_posix()
        except ValueError:  # outside the app (a tool following an import): keep what the tool said
            return Path(os.path.normpath(reported)).as_posix()

    def holds(self, reported: str) -> bool:
        """Whether a path as a tool printed it lies in the app folder."""
        path = Path(reported)
        return (path if path.is_absolute() else self.app_dir / path).resolve().is_relative_to(self.app_dir)

    def lines(self, rel_path: str) -> list[str]:
        """The lines of a file of the app (read once per run; empty when it cannot be read)."""
        if rel_path not in self._lines:
            try:
                text = (self.app_dir / rel_path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self._lines[rel_path] = text.splitlines()
        return self._lines[rel_path]

    def line(self, rel_path: str, number: int | None) -> str:
        """The text of line `number` (1-based) of a file of the app; empty when unknown."""
        lines = self.lines(rel_path)
        return lines[number - 1] if number and 1 <= number <= len(lines) else ""

    def finding(
        self,
        *,
        rule_id: str,
        severity: Severity,
        message: str,
        path: str | None,
        line: int | None = None,
        column: int | None = None,
        end_line: int | None = None,
        category: str,
        cwe: str | None = None,
        help_url: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Finding:
        """A finding at `path:line` whose fingerprint hangs on the source line, so it survives line shifts; its
        severity and category as the rule table (shared/results/rule_table.py) rates the rule."""
        rel_path = self.relative(path) if path else None
        security = is_security(self.tool, rule_id, category == "security")
        if security != (category == "security"):
            category = "security" if security else "quality"
        source_line = self.line(rel_path, line) if rel_path else ""
        return Finding(
            tool=self.tool,
            rule_id=rule_id,
            severity=rated(self.tool, rule_id, severity),
            message=message,
            path=rel_path,
            line=line,
            column=column,
            end_line=end_line,
            category=category,
            cwe=rule_cwe(self.tool, rule_id, cwe),
            help_url=help_url,
            fingerprint=fingerprint(self.tool, rule_id, rel_path, source_line, message),
            extra=extra or {},
            origin=self.origin(rel_path),
        )


def unresolved_imports(source: AppSource, modules: list[str]) -> list[Finding]:
    """One `info` note (rule `unresolved-imports`) for every import a tool could not resolve, none when it resolved
    them all: the app's dependencies are not installed where the tool runs, which says nothing about the app's code.
    `modules` has a name per import site; the note counts them."""
    if not modules:
        return []
    counts = dict(sorted(Counter(modules).items()))
    where = f"where the tool ran ({source.environment})" if source.environment else "where the tool ran"
    return [
        source.finding(
            rule_id="unresolved-imports",
            severity="info",
            message=f"{len(counts)} imported modules could not be resolved {where} ({len(modules)} imports): "
            f"{', '.join(counts)}; what depends on them was not checked",
            path=None,
            category="environment",
            extra={"modules": counts, "environment": source.environment}
            if source.environment
            else {"modules": counts},
        )
    ]


def as_arguments(files: list[str]) -> list[str]:
    """File paths safe to put on a command line: a name starting with '-' must not read as an option."""
    return [f"./{path}" if path.startswith("-") else path for path in files]


def source_files(app_dir: Path, languages: tuple[str, ...]) -> list[str]:
    """The app's files in any of `languages` ("Python", "JavaScript"), sorted."""
    wanted = tuple(suffix for language in languages for suffix in LANGUAGE_SUFFIXES[language])
    return [
        path for path in app_files(app_dir) if path.endswith(wanted) and not path.endswith(MINIFIED_MARKERS)
    ]
