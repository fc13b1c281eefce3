"""The database and cache servers an app needs, started private and throw-away inside its own sandbox.

What shows a need: a driver among its requirements (psycopg2, asyncpg, pymysql, redis …, or pg, mysql2, ioredis in a
package.json), a `DATABASE_URL`/`REDIS_URL` in its `.env`, a postgres, mysql, mariadb or redis image in its compose
file. Each needed server runs from the distribution's binaries as one more process of the sandbox, on its usual
port of the sandbox's own loopback, with its data in the sandbox's private /tmp: nothing outlives the run. The
backend's command is preceded by a prelude that waits until each server answers, creates the database and user the
app's own URL names (else `app`/`app`/`app`), and loads the schema it ships (`schema.sql`, `init.sql`,
`migrations/*.sql`); the app is pointed at it by `DATABASE_URL` (its own scheme kept), `REDIS_URL` and the libpq
variables. A server that is not installed is skipped, with the reason.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from services.orchestrator.apps.pins import name_of
from services.orchestrator.apps.start_rules import env_value

POSTGRESQL, MYSQL, REDIS = "postgresql", "mysql", "redis"
PORTS = {POSTGRESQL: 5432, MYSQL: 3306, REDIS: 6379}
DRIVERS = {
    POSTGRESQL: {
        "psycopg2",
        "psycopg2-binary",
        "psycopg",
        "psycopg-binary",
        "asyncpg",
        "pg8000",
        "pg",
        "postgres",
    },
    MYSQL: {"pymysql", "mysqlclient", "mysql-connector-python", "aiomysql", "mariadb", "mysql", "mysql2"},
    REDIS: {"redis", "aioredis", "rq", "ioredis", "flask-redis", "django-redis"},
}
URL_SCHEMES = {
    "postgres": POSTGRESQL,
    "postgresql": POSTGRESQL,
    "mysql": MYSQL,
    "mariadb": MYSQL,
    "redis": REDIS,
}
_IMAGE = re.compile(
    r"^\s*image:\s*['\"]?(?:[\w.-]+/)*(postgres|postgis|mysql|mariadb|redis)[:@'\"\s]", re.MULTILINE
)
SCHEMA_FILES = (
    "schema.sql",
    "init.sql",
    "db/schema.sql",
    "database/schema.sql",
    "sql/schema.sql",
    "db/init.sql",
)
WAIT_ROUNDS = 300  # × 0.2 s: how long the prelude waits for a server before it lets the app start anyway
DATA = "/tmp/assay-{kind}"  # inside the sandbox's private /tmp


@dataclass(frozen=True)
class Need:
    """A server the app needs and what shows it (`psycopg2-binary in backend/requirements.txt`)."""

    kind: str
    evidence: str


@dataclass
class Arrangement:
    """What running the app's servers takes: their processes, the backend's prelude and environment, and a note
    per server (started, or skipped and why) for app.json."""

    processes: dict[str, list[str]] = field(default_factory=dict)
    prelude: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def wrap(self, argv: list[str]) -> list[str]:
        """The backend's argv, after the prelude when there is one."""
        if not self.prelude:
            return argv
        return ["/bin/sh", "-c", "\n".join([*self.prelude, 'exec "$@"']), "assay-deps", *argv]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def needs(app: Path) -> list[Need]:
    """The servers the app at `app` needs, one Need per kind, in the order PORTS lists them."""
    found: dict[str, str] = {}
    for folder in (".", "backend", "frontend"):
        where = "" if folder == "." else f"{folder}/"
        for line in _read(app / folder / "requirements.txt").splitlines():
            name = name_of(line)
            for kind, drivers in DRIVERS.items():
                if name in drivers:
                    found.setdefault(kind, f"{line.strip()} in {where}requirements.txt")
        try:
            package = json.loads(_read(app / folder / "package.json") or "{}")
        except ValueError:
            package = {}
        listed = package.get("dependencies") if isinstance(package, dict) else None
        for name in listed if isinstance(listed, dict) else {}:
            for kind, drivers in DRIVERS.items():
                if name in drivers:
                    found.setdefault(kind, f"{name} in {where}package.json")
        for key in ("DATABASE_URL", "REDIS_URL"):
            scheme = urlsplit(env_value(app / folder / ".env", key) or "").scheme.split("+")[0]
            if scheme in URL_SCHEMES:
                found.setdefault(URL_SCHEMES[scheme], f"{key} in {where}.env")
        for compose in ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"):
            for image in _IMAGE.findall(_read(app / folder / compose)):
                kind = {"postgis": POSTGRESQL, "postgres": POSTGRESQL, "mariadb": MYSQL}.get(image, image)
                found.setdefault(kind, f"the {image} image in {where}{compose}")
    return [Need(kind, found[kind]) for kind in PORTS if kind in found]


def _postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda path: int(path.split("/")[4]))
    if found:
        return str(Path(found[-1]).parent)
    postgres = shutil.which("postgres")
    return str(Path(postgres).parent) if postgres else None


def _schema(app: Path) -> str | None:
    """The app's schema file relative to its root, or its migrations' SQL files, else None."""
    for folder in ("backend", "."):
        for name in SCHEMA_FILES:
            if (app / folder / name).is_file():
                return str(Path(folder, name)) if folder != "." else name
    return None


def _database(app: Path, kind: str) -> tuple[str, str, str, str]:
    """(scheme, user, password, database) of the app's own DATABASE_URL for `kind`, else defaults."""
    for folder in (".", "backend"):
        url = urlsplit(env_value(app / folder / ".env", "DATABASE_URL") or "")
        if URL_SCHEMES.get(url.scheme.split("+")[0]) == kind:
            name = _identifier(url.path.lstrip("/"))
            return url.scheme, _identifier(url.username or ""), url.password or "app", name
    return ("postgresql" if kind == POSTGRESQL else "mysql"), "app", "app", "app"


def _identifier(name: str) -> str:
    """A name from the app's URL, safe inside SQL's quotes (letters, digits, `_`, `-`, `.`)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", name) or "app"


def _wait(check: str, kind: str) -> str:
    return (
        f"i=0; until {check} >/dev/null 2>&1; do i=$((i+1)); "
        f'[ $i -ge {WAIT_ROUNDS} ] && {{ echo "assay-deps: {kind} did not answer" >&2; break; }}; sleep 0.2; done'
    )


def _postgresql(app: Path, app_root: str, into: Arrangement) -> str:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        return "skipped: PostgreSQL is not installed (apt-get install postgresql)"
    port, data, q = PORTS[POSTGRESQL], DATA.format(kind=POSTGRESQL), shlex.quote
    server = (
        f"{bin_dir}/initdb -D {data} -U postgres --auth=trust -E UTF8 --locale=C >{data}.log 2>&1 "
        f"|| {{ cat {data}.log; exit 1; }}; exec {bin_dir}/postgres -D {data} -h 127.0.0.1 -p {port} -k /tmp "
        "-c dynamic_shared_memory_type=mmap -c fsync=off -c shared_buffers=16MB -c max_connections=50"
    )
    into.processes[POSTGRESQL] = ["/bin/sh", "-c", server]
    scheme, user, password, database = _database(app, POSTGRESQL)
    psql = f"{bin_dir}/psql -h 127.0.0.1 -p {port} -v ON_ERROR_STOP=1 -q"
    role = f'CREATE ROLE "{_identifier(user)}" LOGIN SUPERUSER'
    owned = f'CREATE DATABASE "{_identifier(database)}" OWNER "{_identifier(user)}"'
    into.prelude += [
        _wait(f"{bin_dir}/pg_isready -h 127.0.0.1 -p {port} -U postgres -d postgres", POSTGRESQL),
        f"{psql} -U postgres -d postgres -c {q(role)}",  # fails harmlessly for postgres, which exists
        f"{psql} -U postgres -d postgres -c {q(owned)}",
    ]
    schema = _schema(app)
    if schema:
        into.prelude.append(
            f"{psql} -U {q(user)} -d {q(database)} -f {q(f'{app_root}/{schema}')} >&2 "
            f"&& echo {q(f'assay-deps: loaded {schema} into {database}')} >&2"
        )
    into.env.update(
        DATABASE_URL=f"{scheme}://{user}:{password}@127.0.0.1:{port}/{database}",
        PGHOST="127.0.0.1",
        PGPORT=str(port),
        PGUSER=user,
        PGPASSWORD=password,
        PGDATABASE=database,
    )
    return f"started: PostgreSQL ({bin_dir}) on 127.0.0.1:{port}, database {database}" + (
        f", {schema} loaded before the app starts" if schema else ""
    )


def _mysql(app: Path, app_root: str, into: Arrangement) -> str:
    server, install, client = (shutil.which(name) for name in ("mariadbd", "mariadb-install-db", "mariadb"))
    if not (server and install and client):
        return "skipped: MariaDB is not installed (apt-get install mariadb-server)"
    port, data, q = PORTS[MYSQL], DATA.format(kind=MYSQL), shlex.quote
    common = f"--no-defaults --datadir={data} --tmpdir=/tmp"
    into.processes[MYSQL] = [
        "/bin/sh",
        "-c",
        f"{install} {common} --skip-test-db >{data}.log 2>&1 || {{ cat {data}.log; exit 1; }}; exec {server} "
        f"{common} --socket={data}.sock --pid-file={data}.pid --port={port} --bind-address=127.0.0.1 "
        "--skip-grant-tables --innodb-buffer-pool-size=16M --skip-log-bin",
    ]
    scheme, user, password, database = _database(app, MYSQL)
    mariadb = f"{client} --no-defaults -h 127.0.0.1 -P {port} -u root"
    into.prelude += [
        _wait(f"{mariadb} -e 'SELECT 1'", MYSQL),
        f"{mariadb} -e {q(f'CREATE DATABASE IF NOT EXISTS `{_identifier(database)}`')}",
    ]
    schema = _schema(app)
    if schema:
        into.prelude.append(
            f"{mariadb} {q(database)} < {q(f'{app_root}/{schema}')} "
            f"&& echo {q(f'assay-deps: loaded {schema} into {database}')} >&2"
        )
    into.env["DATABASE_URL"] = f"{scheme}://{user}:{password}@127.0.0.1:{port}/{database}"
    return f"started: MariaDB on 127.0.0.1:{port} (any user and password), database {database}" + (
        f", {schema} loaded before the app starts" if schema else ""
    )


def _redis(into: Arrangement) -> str:
    server, client = shutil.which("redis-server"), shutil.which("redis-cli")
    if not (server and client):
        return "skipped: Redis is not installed (apt-get install redis-server)"
    port = PORTS[REDIS]
    into.processes[REDIS] = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", "/tmp",
    ]  # fmt: skip
    into.prelude.append(_wait(f"{client} -h 127.0.0.1 -p {port} ping", REDIS))
    into.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    return f"started: Redis on 127.0.0.1:{port}"


def arrange(app: Path, app_root: str) -> Arrangement:
    """The servers the app at `app` (seen as `app_root` inside the sandbox) needs, arranged to run beside it."""
    arrangement = Arrangement()
    for need in needs(app):
        if need.kind == POSTGRESQL:
            note = _postgresql(app, app_root, arrangement)
        elif need.kind == MYSQL:
            note = _mysql(app, app_root, arrangement)
        else:
            note = _redis(arrangement)
        arrangement.notes[need.kind] = f"{note} (needed: {need.evidence})"
    return arrangement
