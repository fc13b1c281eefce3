"""An app's own PostgreSQL and Redis, started private inside its sandbox: apps of the tests' own that need one
(a driver in requirements.txt, a DATABASE_URL in .env naming their database and user, a schema.sql) are prepared
with real pip, started sandboxed (real bwrap) beside a real postgres / redis-server from the distribution, and
answer over HTTP with what they read and wrote there; app.json says what was started and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from services.orchestrator.apps.runner import AppRunner, AppSlot
from services.orchestrator.apps.services_deps import _postgres_bin, needs
from shared.wire.messages import AnalysisRequest
from tests.support.apps import app_processes, app_request, make_app, needs_bwrap, runner_settings

POSTGRES_APP = """
import os

import psycopg2
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    with psycopg2.connect(os.environ["DATABASE_URL"]) as db, db.cursor() as cursor:
        cursor.execute("insert into visits (who) values ('assay') returning id")
        (new,) = cursor.fetchone()
        cursor.execute("select name from notes order by id")
        notes = [name for (name,) in cursor.fetchall()]
        cursor.execute("select current_database(), current_user")
        where = cursor.fetchone()
    return {"visit": new, "notes": notes, "where": list(where)}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)
"""
SCHEMA = """
create table notes (id serial primary key, name text not null);
insert into notes (name) values ('first'), ('second');
create table visits (id serial primary key, who text);
"""
REDIS_APP = """
import os

import redis
from flask import Flask

app = Flask(__name__)
store = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://redis:6379/0"))


@app.get("/")
def index():
    return {"hits": store.incr("hits")}


if __name__ == "__main__":
    app.run(port=5000)
"""


async def _two_answers(
    tmp_path: Path, app_work_dir: Path, apps: Path, model: str
) -> tuple[list[object], AppSlot]:
    answers: list[object] = []

    async def analyze(request: AnalysisRequest, ports: dict[str, int]) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=20) as client:
            for _ in range(2):
                response = await client.get(request.target_urls[0])
                answers.append(response.json() if response.status_code == 200 else response.text)

    slot = AppSlot()
    runner = AppRunner(runner_settings(tmp_path, apps, app_work_dir))
    await runner.run(app_request("task_000000000dep", model, 1), slot, analyze)
    return answers, slot


def test_what_shows_a_need_is_found_in_requirements_env_and_compose(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        "m",
        1,
        {
            "backend/requirements.txt": "Flask==3.0\npsycopg2-binary==2.9.9\n",
            "docker-compose.yml": "services:\n  cache:\n    image: redis:7-alpine\n  db:\n    image: mariadb:11\n",
        },
    )
    found = {need.kind: need.evidence for need in needs(app)}
    assert found == {
        "postgresql": "psycopg2-binary==2.9.9 in backend/requirements.txt",
        "mysql": "the mariadb image in docker-compose.yml",
        "redis": "the redis image in docker-compose.yml",
    }
    bare = make_app(tmp_path, "m", 2, {".env": "DATABASE_URL=sqlite:///app.db\n", "backend/app.py": ""})
    assert needs(bare) == []


@needs_bwrap
@pytest.mark.skipif(
    _postgres_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)"
)
async def test_an_app_needing_postgresql_gets_its_own_with_its_schema_loaded(
    tmp_path: Path, app_work_dir: Path
) -> None:
    apps = tmp_path / "apps"
    make_app(
        apps,
        "postgres-app",
        1,
        {
            "backend/app.py": POSTGRES_APP,
            "backend/requirements.txt": "flask\npsycopg2-binary\n",
            "backend/schema.sql": SCHEMA,
            ".env": "DATABASE_URL=postgresql://shop:secret@db:5432/shopdb\n",
        },
    )
    answers, slot = await _two_answers(tmp_path, app_work_dir, apps, "postgres-app")
    record = slot.record
    assert record is not None and record.error is None, record and record.output_tail
    # what the schema put there, read as the app's own user in its own database; each visit written and counted
    # (the readiness probe was the first)
    first, second = answers
    assert isinstance(first, dict) and isinstance(second, dict), (answers, record.output_tail)
    assert first["notes"] == ["first", "second"] and first["where"] == ["shopdb", "shop"], first
    assert second["visit"] == first["visit"] + 1
    note = record.dependencies["postgresql"]
    assert note.startswith("started: PostgreSQL") and "backend/schema.sql loaded" in note, note
    assert "(needed: DATABASE_URL in .env)" in note
    assert "assay-deps: loaded backend/schema.sql into shopdb" in record.output_tail
    assert "postgresql" in record.processes
    assert app_processes(record) == []


@needs_bwrap
@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="Redis is not installed (apt-get install redis-server)"
)
async def test_an_app_needing_redis_gets_its_own(tmp_path: Path, app_work_dir: Path) -> None:
    apps = tmp_path / "apps"
    make_app(
        apps, "redis-app", 1, {"backend/app.py": REDIS_APP, "backend/requirements.txt": "flask\nredis\n"}
    )
    answers, slot = await _two_answers(tmp_path, app_work_dir, apps, "redis-app")
    record = slot.record
    assert record is not None and record.error is None, record and record.output_tail
    assert answers == [{"hits": 2}, {"hits": 3}], (answers, record.output_tail)  # the readiness probe was 1
    assert record.dependencies["redis"].startswith("started: Redis on 127.0.0.1:6379"), record.dependencies
    assert app_processes(record) == []


MYSQL_APP = """
import os
from urllib.parse import urlsplit

import pymysql
from flask import Flask

app = Flask(__name__)
url = urlsplit(os.environ["DATABASE_URL"])


@app.get("/")
def index():
    db = pymysql.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                         database=url.path.lstrip("/"))
    with db.cursor() as cursor:
        cursor.execute("select name from notes order by id")
        names = [name for (name,) in cursor.fetchall()]
    db.close()
    return {"notes": names}


if __name__ == "__main__":
    app.run(port=5000)
"""


@needs_bwrap
@pytest.mark.skipif(
    shutil.which("mariadbd") is None, reason="MariaDB is not installed (apt-get install mariadb-server)"
)
async def test_an_app_needing_mysql_gets_a_mariadb_of_its_own(tmp_path: Path, app_work_dir: Path) -> None:
    apps = tmp_path / "apps"
    schema = "create table notes (id int primary key auto_increment, name text);\ninsert into notes (name) values ('m1');\n"
    files = {
        "backend/app.py": MYSQL_APP,
        "backend/requirements.txt": "flask\npymysql\n",
        "schema.sql": schema,
    }
    make_app(apps, "mysql-app", 1, files)
    answers, slot = await _two_answers(tmp_path, app_work_dir, apps, "mysql-app")
    record = slot.record
    assert record is not None and record.error is None, record and record.output_tail
    assert answers == [{"notes": ["m1"]}] * 2, (answers, record.output_tail)
    assert record.dependencies["mysql"].startswith("started: MariaDB"), record.dependencies
    assert app_processes(record) == []
