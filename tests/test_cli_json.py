"""Every `assay` command explains itself (`--help` at every level renders) and takes `--json`, whose stdout is then
one JSON document: tokens (through the database), a trace from span files, a batch followed with `--wait`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.main import main, parser
from tests.support.gateway import Gateway
from tests.support.persister import Harness
from tests.test_batches import OTHER, REPO, recorded, set_status
from tests.test_batches import gateway as gateway  # noqa: F401 - the fixtures of the batch tests
from tests.test_batches import persister as persister  # noqa: F401
from tests.test_cli_trace import TASK, write_task_trace


@pytest.fixture(autouse=True)
def same_umask() -> Iterator[None]:
    """`main()` sets this process's umask (shared/store/file_modes.py), as every entry point does: give the rest of the
    test session its own back."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def commands(
    root: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under `root` (its own first), with the words that reach it (`token list`)."""
    yield " ".join(path), root
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def leaves(root: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands a user runs: parsers without subcommands of their own."""
    return {
        words: command
        for words, command in commands(root)
        if words and not any(isinstance(a, argparse._SubParsersAction) for a in command._actions)
    }


def test_every_help_text_renders() -> None:
    rendered = {words or "assay": command.format_help() for words, command in commands(parser())}

    assert len(rendered) > 15
    assert all("usage: assay" in text for text in rendered.values())
    assert "verdicts with intervals" in rendered["assay"]  # the report command's line, among the others


def test_assay_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    assert "report" in capsys.readouterr().out


def test_every_command_takes_json() -> None:
    commands_without = [
        words for words, command in leaves(parser()).items() if "--json" not in command._option_string_actions
    ]

    assert len(leaves(parser())) >= 20
    assert commands_without == []


def assay_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    """Run `assay argv… --json` in this process; its stdout, which must be exactly one JSON document."""
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_token_commands_print_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ASSAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'assay.db'}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ASSAY_GATEWAY_URL", "http://127.0.0.1:9")

    created = assay_json(capsys, "token", "create", "ci", "--scope", "read", "--direct")
    assert isinstance(created, dict) and created["token"].startswith("assay_")
    assert created["about"]["name"] == "ci" and created["about"]["scope"] == "read"
    listed = assay_json(capsys, "token", "list", "--direct")
    assert listed == {"tokens": [created["about"]]}
    revoked = assay_json(capsys, "token", "revoke", created["about"]["token_id"], "--direct")
    assert isinstance(revoked, dict) and revoked["revoked_at"] is not None

    saved = tmp_path / "config" / "assay" / "tokens" / "127.0.0.1-9"
    saved.parent.mkdir(parents=True)
    saved.write_text(created["token"] + "\n")
    assert assay_json(capsys, "token", "show-local") == {
        "gateway_url": "http://127.0.0.1:9",
        "token": created["token"],
    }


def test_trace_prints_json_from_span_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_id = write_task_trace(tmp_path)
    monkeypatch.setenv("ASSAY_GATEWAY_URL", "http://127.0.0.1:9")

    answer = assay_json(capsys, "trace", TASK, "--dir", str(tmp_path))

    assert isinstance(answer, dict) and answer["task_id"] == TASK and answer["trace_id"] == trace_id
    names = [span["name"] for span in answer["spans"]]
    assert names[0] == "POST /api/analysis/run" and len(names) == 6
    assert [span["start_ns"] for span in answer["spans"]] == sorted(
        span["start_ns"] for span in answer["spans"]
    )


async def test_batch_wait_json_prints_only_the_batch_as_it_ended(
    gateway: Gateway, persister: Harness
) -> None:  # noqa: F811
    env = {**os.environ, "ASSAY_GATEWAY_URL": gateway.url, "ASSAY_TOKEN": gateway.token or ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "batch", "--models", OTHER, "--type", "static", "--wait", "--json",
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    batch_id = (await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip()
    task_ids = [
        task["task_id"] for task in (await gateway.http.get(f"/api/batches/{batch_id}")).json()["tasks"]
    ]
    await recorded(persister, task_ids)
    await set_status(gateway.settings.database_url, "completed", *task_ids)
    out, err = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, err
    ended = json.loads(out)
    assert ended["batch_id"] == batch_id and ended["finished"] and ended["by_status"]["completed"] == 2
