"""`make audit` (maintenance/dependency_audit.py) passes only what was really audited: npm audit against real local
registries (one with nothing to report, one with an advisory, one that refuses audits as a mirror does) and
pip-audit's reports (none of whose packages the database knew, a vulnerable one, a clean one) each give their
verdict; anything not audited is exit code 2 with the reason, never "no known vulnerabilities"."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from maintenance.dependency_audit import CLEAN, UNAUDITED, VULNERABLE, node_tools, pip_outcome
from tests.test_audit_isolation import LOCK

ADVISORY = {
    "lodash": [
        {
            "id": 1065,
            "url": "https://github.com/advisories/GHSA-jf85-cpcp-j695",
            "title": "Prototype Pollution in lodash",
            "severity": "critical",
            "vulnerable_versions": "<4.17.12",
            "cwe": ["CWE-1321"],
        }
    ]
}


PACKUMENT = {"name": "lodash", "versions": {"4.17.4": {"name": "lodash", "version": "4.17.4"}}}


def registry(
    status: int, body: bytes
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A registry answering an audit (POST) with `status` and `body`, and a package's metadata (GET) as npm asks
    for it when an advisory names the package."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        code, reply = (status, body) if head.startswith(b"POST") else (200, json.dumps(PACKUMENT).encode())
        start = f"HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {len(reply)}\r\n\r\n"
        writer.write(start.encode() + reply)
        await writer.drain()
        writer.close()

    return answer


@pytest.mark.parametrize(
    ("status", "body", "verdict", "said"),
    [
        (200, b"{}", CLEAN, "0 vulnerable packages"),
        (200, json.dumps(ADVISORY).encode(), VULNERABLE, "lodash (critical"),
        (405, b"", UNAUDITED, "did not answer: 405"),
    ],
    ids=["clean", "vulnerable", "refused"],
)
async def test_node_tools_are_audited_against_the_registry_or_said_not_to_be(
    tmp_path: Path, status: int, body: bytes, verdict: int, said: str
) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed here")
    (tmp_path / "package.json").write_text(
        json.dumps({"name": "shop", "version": "1.0.0", "dependencies": {"lodash": "4.17.4"}})
    )
    (tmp_path / "package-lock.json").write_text(json.dumps(LOCK))
    server = await asyncio.start_server(registry(status, body), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await asyncio.to_thread(node_tools, tmp_path, f"http://127.0.0.1:{port}/")
    finally:
        server.close()
    assert outcome.code == verdict, outcome.lines
    assert said in "\n".join(outcome.lines)


def pip_audit_said(dependencies: list[Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], 0, json.dumps({"dependencies": dependencies, "fixes": []}), "")


def test_a_python_environment_the_database_knew_nothing_of_was_not_audited() -> None:
    unknown = [
        {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} (1.0)"}
        for name in ("aiosqlite", "alembic")
    ]
    outcome = pip_outcome("env", pip_audit_said(unknown))
    assert outcome.code == UNAUDITED
    assert outcome.lines == [
        "audited 0 of 2 packages: no advisory data (Dependency not found on PyPI and could not be audited: "
        "aiosqlite (1.0))"
    ]
    broken = pip_outcome("env", subprocess.CompletedProcess([], 1, "", "ConnectionError: offline"))
    assert broken.code == UNAUDITED and "offline" in broken.lines[0]


def test_a_python_environment_with_a_known_vulnerability_fails_and_names_it() -> None:
    report = [
        {
            "name": "flask",
            "version": "2.0.0",
            "vulns": [{"id": "PYSEC-2023-62", "fix_versions": ["2.2.5", "2.3.2"]}],
        },
        {"name": "msgspec", "version": "0.19.0", "vulns": []},
        {
            "name": "assay",
            "skip_reason": "Dependency not found on PyPI and could not be audited: assay (0.1.0)",
        },
    ]
    outcome = pip_outcome("env", pip_audit_said(report))
    assert outcome.code == VULNERABLE
    assert outcome.lines == [
        "audited 2 of 3 packages (1 skipped), 1 known vulnerabilities",
        "flask 2.0.0: PYSEC-2023-62 (fixed in 2.2.5, 2.3.2)",
    ]
    clean = pip_outcome("env", pip_audit_said(report[1:]))
    assert clean.code == CLEAN


def test_make_audit_here_says_plainly_what_it_could_not_audit() -> None:
    """Run as `make audit` runs it. Where the advisory data cannot be reached (this machine: the registries here
    answer no audits) it exits 2 naming each part; where it can, it exits 0 or 1 with a verdict per part."""
    done = subprocess.run(
        [sys.executable, "-m", "maintenance.dependency_audit"],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    verdicts = [line for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert len(verdicts) >= 2 and verdicts[0].endswith(f"python environment ({sys.prefix})")
    assert done.returncode in (CLEAN, VULNERABLE, UNAUDITED)
    if done.returncode == UNAUDITED:
        assert any(line.startswith("NOT AUDITED: ") for line in verdicts)
        assert "could not be audited" in done.stderr
    else:
        assert not any(line.startswith("NOT AUDITED: ") for line in verdicts)
