"""The orchestrator's persistent analyzer connections, against real WebSocket peers: many runs and the health
requests of choosing a replica share one connection per replica, each run gets its own frames, and a lost
connection is replaced by a new one."""

from __future__ import annotations

import asyncio

from services.orchestrator.analyzer_client import AnalyzerClient
from services.orchestrator.analyzer_connections import AnalyzerConnections
from services.orchestrator.outages import Outages
from services.orchestrator.replicas import ReplicaChooser
from shared.wire.protocol import AnalyzeFrame, ProgressFrame, ServiceResult
from shared.wire.tasks import TaskRef, new_task_id
from tests.support.orchestrator import ScriptedAnalyzer, analyzers


def frame_for(task_id: str) -> AnalyzeFrame:
    task = TaskRef(id=task_id, model_slug="openai_codex-mini", app_number=1, analysis_type="static")
    return AnalyzeFrame(id=f"{task_id}:static", task=task, tools=["bandit"])


async def ignore(_frame: ProgressFrame) -> None:
    pass


def client_for(peer: ScriptedAnalyzer, connections: AnalyzerConnections) -> AnalyzerClient:
    chooser = ReplicaChooser(health_timeout_s=5.0, connections=connections)
    return AnalyzerClient({"static": [peer.url]}, 15.0, Outages(chooser, limit_s=30.0), connections)


async def test_concurrent_runs_share_one_connection_and_each_gets_its_own_result() -> None:
    peer = ScriptedAnalyzer("static", ["echo"])
    connections = AnalyzerConnections()
    async with analyzers(peer):
        client = client_for(peer, connections)
        task_ids = [new_task_id() for _ in range(8)]
        results: list[ServiceResult] = await asyncio.gather(
            *(client.analyze("static", frame_for(task_id), ignore) for task_id in task_ids)
        )
        await connections.close()
    assert peer.connections == 1
    assert peer.health_requests == 8  # each run chose its replica, on the same connection
    for task_id, result in zip(task_ids, results, strict=True):
        assert {finding.message for finding in result.findings} == {
            f"{task_id} finding 1",
            f"{task_id} finding 2",
        }


async def test_a_closed_connection_is_replaced_by_a_new_one() -> None:
    peer = ScriptedAnalyzer("static", ["echo"])
    connections = AnalyzerConnections()
    async with analyzers(peer):
        client = client_for(peer, connections)
        first = await client.analyze("static", frame_for(new_task_id()), ignore)
        connection = await connections.get(peer.url)
        await connection.close()  # as when the analyzer restarts
        second_id = new_task_id()
        second = await client.analyze("static", frame_for(second_id), ignore)
        await connections.close()
    assert first.status == second.status == "success"
    assert second.findings[0].message == f"{second_id} finding 1"
    assert peer.connections == 2
