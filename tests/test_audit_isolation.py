"""The dependency audits ask only the advisory databases Assay is configured with (the red team's F6): an app whose
`.npmrc` points npm at a listener of its own (registry, proxy, credentials), or whose requirements name their own
package index, gets nothing sent there. Real npm and pip-audit processes, real loopback listeners."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from services.analyzers.base.runner import run_tool
from services.analyzers.static.tools import pip_audit
from services.analyzers.static.tools.npm_audit import NpmAudit
from services.analyzers.static.tools.pip_audit import PipAudit
from shared.operations.config import load_settings
from tests.support.static import make_job

LOCK = {
    "name": "shop",
    "version": "1.0.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "shop", "version": "1.0.0", "dependencies": {"lodash": "4.17.4"}},
        "node_modules/lodash": {
            "version": "4.17.4",
            "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.4.tgz",
        },
    },
}


class Listener:
    """An HTTP listener on loopback that records the first line of every request and answers `200 {}` (an
    advisory database with nothing to report)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            self.requests.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            self.requests.append("(connection without a complete request)")
        finally:
            writer.close()


@pytest.fixture
async def listeners() -> AsyncIterator[tuple[Listener, Listener]]:
    """(the registry Assay is configured with, the one the app names)."""
    configured, hostile = Listener(), Listener()
    for listener in (configured, hostile):
        listener.server = await asyncio.start_server(listener.answer, "127.0.0.1", 0)
    yield configured, hostile
    for listener in (configured, hostile):
        assert listener.server is not None
        listener.server.close()


def node_app(root: Path, hostile: Listener) -> Path:
    web = root / "app" / "frontend"
    web.mkdir(parents=True)
    (web / "package.json").write_text(
        json.dumps({"name": "shop", "version": "1.0.0", "dependencies": {"lodash": "4.17.4"}})
    )
    (web / "package-lock.json").write_text(json.dumps(LOCK, indent=2))
    host = f"127.0.0.1:{hostile.port}"
    (web / ".npmrc").write_text(
        f"registry={hostile.url}\nproxy={hostile.url}\nhttps-proxy={hostile.url}\n"
        f"//{host}/:_authToken=taken-from-the-app\nstrict-ssl=false\naudit-level=none\n"
    )
    return root / "app"


async def test_npm_audit_asks_the_configured_registry_never_the_apps_npmrc(
    tmp_path: Path, listeners: tuple[Listener, Listener]
) -> None:
    configured, hostile = listeners
    if NpmAudit().locate() is None:
        pytest.skip("npm is not installed here")
    job = make_job(node_app(tmp_path, hostile))
    job = msgspec.structs.replace(job, settings=load_settings({"ASSAY_NPM_REGISTRY": configured.url}))

    output = await run_tool(NpmAudit(), job)

    assert hostile.requests == []
    assert "POST /-/npm/v1/security/advisories/bulk HTTP/1.1" in configured.requests
    assert output.run.status == "success", output.run.reason
    assert output.run.command[output.run.command.index("--registry") + 1] == configured.url
    assert output.run.command[-2:] == ["--prefix", "frontend"]


async def test_npm_audit_follows_no_link_out_of_the_app(
    tmp_path: Path, listeners: tuple[Listener, Listener]
) -> None:
    configured, hostile = listeners
    if NpmAudit().locate() is None:
        pytest.skip("npm is not installed here")
    app = node_app(tmp_path, hostile)
    outside = tmp_path / "host-file.json"
    outside.write_text(json.dumps(LOCK))
    (app / "frontend" / "package-lock.json").unlink()
    (app / "frontend" / "package-lock.json").symlink_to(outside)
    job = msgspec.structs.replace(
        make_job(app), settings=load_settings({"ASSAY_NPM_REGISTRY": configured.url})
    )

    output = await run_tool(NpmAudit(), job)

    assert (output.run.status, output.run.reason) == ("skipped", "no package-lock.json")
    assert configured.requests == [] and hostile.requests == []


async def test_pip_audit_never_uses_the_index_an_apps_requirements_name(
    tmp_path: Path, listeners: tuple[Listener, Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    configured, hostile = listeners
    backend = tmp_path / "app" / "backend"
    backend.mkdir(parents=True)
    (backend / "requirements.txt").write_text(
        f"--index-url {hostile.url}simple/\n--extra-index-url {hostile.url}extra/\n"
        f"--find-links {hostile.url}links/\n--trusted-host 127.0.0.1\nflask==2.0.0\n"
    )
    (backend / "pip.conf").write_text(f"[global]\nindex-url = {hostile.url}conf/\n")
    # The advisory database is taken as reachable (its check connects to this listener); pip-audit then asks
    # PyPI itself, which this machine may not reach: either way the app's index must get nothing.
    monkeypatch.setattr(pip_audit, "ADVISORY_HOST", "127.0.0.1")
    monkeypatch.setattr(pip_audit, "ADVISORY_PORT", configured.port)

    output = await run_tool(PipAudit(), make_job(tmp_path / "app"))

    assert output.run.status in ("success", "skipped"), output.run.reason
    assert output.run.exit_code is not None  # pip-audit did run
    assert hostile.requests == []
