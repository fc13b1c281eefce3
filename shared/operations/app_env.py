"""An app's `.env` file: read once per analysis (off the event loop) and handed to every tool on its Job; the
gateway reads it too, for the ports the targets policy allows (shared/operations/target_policy.py)."""

from __future__ import annotations

from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (comments and blank lines skipped, quotes stripped); {} when absent."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def app_env(app_dir: Path | None) -> dict[str, str]:
    """The variables of `<app_dir>/.env` ({} without an app folder or file)."""
    return read_env_file(app_dir / ".env") if app_dir is not None else {}


PORT_KEYS = ("BACKEND_PORT", "FRONTEND_PORT")


def app_ports(env: dict[str, str]) -> list[int]:
    """The ports of the running app its `.env` names (BACKEND_PORT, FRONTEND_PORT), in that order."""
    return [int(env[key]) for key in PORT_KEYS if env.get(key, "").isdigit()]


# The port of the marker listener Assay runs inside an app's sandbox (services/orchestrator/apps/inside.py): an app
# that fetches a URL it was given reaches it, and the SSRF check reads what it was asked for.
CANARY_PORT_KEY = "ASSAY_CANARY_PORT"


def canary_port(env: dict[str, str]) -> int | None:
    value = env.get(CANARY_PORT_KEY, "")
    return int(value) if value.isdigit() else None


def started_app_env(env: dict[str, str], app_ports: dict[str, int]) -> dict[str, str]:
    """The `.env` as the analyzers see it. For an app Assay started (`app_ports` given: where it put the app), the
    file's own port variables are dropped and Assay's stand in, so that a `.env` naming another local port (a
    database, an admin listener) cannot widen the targets policy; otherwise the file as it is."""
    if not app_ports:
        return env
    ours = (*PORT_KEYS, CANARY_PORT_KEY)
    kept = {key: value for key, value in env.items() if key not in ours}
    kept.update({key: str(port) for key, port in app_ports.items() if key in ours})
    return kept
