"""Which Python an app's virtualenv is made with: the one the app declares, among those installed.

Where an app says which Python it wants, first found wins: `runtime.txt` (`python-3.8.10`), `.python-version`
(`3.9`), `python_requires` in setup.py/setup.cfg or `requires-python` in pyproject.toml, the Dockerfile's base
image (`FROM python:3.10-slim`); each at the app's root or in `backend/`. The installed interpreters are the
`python3.N` binaries of the system folders the sandbox shows. None declared, or none installed that fits: the
configured ASSAY_APP_PYTHON, and the choice says so.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

SEARCHED = ("/usr/bin", "/usr/local/bin")
_BINARY = re.compile(r"^python(3\.\d+)$")
_DECLARATIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("runtime.txt", re.compile(r"^\s*python-(\d+\.\d+)", re.MULTILINE), "=="),
    (".python-version", re.compile(r"^\s*(\d+\.\d+)", re.MULTILINE), "=="),
    ("setup.py", re.compile(r"python_requires\s*=\s*['\"]([^'\"]+)['\"]"), ""),
    ("setup.cfg", re.compile(r"^\s*python_requires\s*=\s*(\S[^\n]*)", re.MULTILINE), ""),
    ("pyproject.toml", re.compile(r"^\s*requires-python\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE), ""),
    ("Dockerfile", re.compile(r"^\s*FROM\s+(?:\S+/)?python:(\d+\.\d+)", re.MULTILINE | re.IGNORECASE), "=="),
)


@dataclass(frozen=True)
class Interpreter:
    """The chosen Python: its path, its version (`3.11`) and why it was chosen."""

    path: str
    version: str
    why: str


def declared(app: Path) -> tuple[str, str] | None:
    """(version specifier, where it was found), e.g. (`==3.8`, `runtime.txt`), or None."""
    for name, pattern, operator in _DECLARATIONS:
        for folder in (".", "backend"):
            try:
                text = (app / folder / name).read_text(errors="replace")
            except OSError:
                continue
            found = pattern.search(text)
            if found:
                where = name if folder == "." else f"backend/{name}"
                spec = f"{operator}{found.group(1)}.*" if operator else found.group(1).strip()
                return spec, where
    return None


def installed(folders: tuple[str, ...] = SEARCHED) -> dict[str, str]:
    """version (`3.11`) → path of each `python3.N` found in `folders`, the first folder winning."""
    found: dict[str, str] = {}
    for folder in folders:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = _BINARY.match(name)
            path = os.path.join(folder, name)
            if match and os.access(path, os.X_OK):
                found.setdefault(match.group(1), path)
    return found


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def choose(app: Path, default: str, available: dict[str, str] | None = None) -> Interpreter:
    """The newest installed Python that fits what the app declares, else `default` with the reason."""
    available = installed() if available is None else available
    real = os.path.realpath(default)
    default_version = next((v for v, path in available.items() if os.path.realpath(path) == real), "")
    wanted = declared(app)
    if wanted is None:
        return Interpreter(default, default_version, "the app declares no Python version")
    spec_text, where = wanted
    try:
        spec = SpecifierSet(spec_text)
    except InvalidSpecifier:
        return Interpreter(
            default, default_version, f"{where} declares {spec_text!r}, not a version specifier"
        )
    fitting = sorted((version for version in available if spec.contains(version)), key=_version_key)
    if fitting:
        version = fitting[-1]
        return Interpreter(
            available[version], version, f"{where} declares Python {spec_text}: {version} fits"
        )
    listed = ", ".join(sorted(available, key=_version_key)) or "none"
    return Interpreter(
        default,
        default_version,
        f"{where} declares Python {spec_text}, but no installed Python fits (installed: {listed}); "
        f"used {default_version or default}",
    )
