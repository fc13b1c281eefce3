"""What an app's `backend/requirements.txt` may ask of the preparation: packages, from the operator's indexes.

A line naming an index or a folder of its own (`--index-url`, `-i`, `--extra-index-url`, `--find-links`, `-f`)
is refused with the reason, unless its host is listed in `ASSAY_APP_INDEX_ALLOW` (a local folder never is). A line
naming a path (`./pkg`, `-e ./pkg`, `file:`) is installed from the app's own files, and one naming another file of
requirements or constraints (`-r extra.txt`, `-c pins.txt`) reads the app's own files too: the virtualenv is then
keyed by the app's content as well (else two apps with the same requirements.txt but different files it names
would share, or poison, one virtualenv, or one remembered failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from services.orchestrator.apps.index_proxy import allows

INDEX_OPTIONS = ("--index-url", "--extra-index-url", "--find-links", "-i", "-f")
LOCAL_PREFIXES = (".", "/", "file:")
FILE_OPTIONS = ("-r", "-c", "--requirement", "--constraint")  # name another file of the app's


@dataclass(frozen=True)
class RequirementsCheck:
    """The lines refused (with why) and whether any line installs from the app's own files."""

    refused: list[str]
    local: bool

    def reason(self) -> str:
        return "; ".join(self.refused)


def _option(line: str) -> tuple[str, str] | None:
    """(`--index-url`, its value) for a line naming an index option, in any spelling pip accepts."""
    for option in INDEX_OPTIONS:
        if line == option or line.startswith((f"{option}=", f"{option} ")):
            return option, line[len(option) :].lstrip("= ").strip()
        if len(option) == 2 and line.startswith(option):  # -ihttps://… : pip takes a glued value too
            return option, line[2:].strip()
    return None


def check_requirements(text: str, index_allow: frozenset[str]) -> RequirementsCheck:
    """Check every line of a requirements file against the rules above."""
    refused: list[str] = []
    local = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        named = _option(line)
        if named is not None:
            option, value = named
            url = urlsplit(value)
            port = url.port or (443 if url.scheme == "https" else 80)
            if not url.hostname or not allows(index_allow, url.hostname, port):
                refused.append(
                    f"line {number}: {option} {value[:200]} is refused: an app installs only from the package "
                    "indexes Assay is given (ASSAY_APP_INDEX_ALLOW lists the indexes an app may name)"
                )
            continue
        target = line.removeprefix("-e").strip()
        if target.startswith(LOCAL_PREFIXES) or line.startswith(FILE_OPTIONS):
            local = True
    return RequirementsCheck(refused=refused, local=local)
