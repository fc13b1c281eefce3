"""Where a running app listens: the request's `target_urls`, else the ports in the app's `.env` on localhost."""

from __future__ import annotations

from pathlib import Path

PORT_KEYS = ("BACKEND_PORT", "FRONTEND_PORT")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file (comments and blank lines skipped, quotes stripped)."""
    values: dict[str, str] = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def target_urls(requested: list[str], app_dir: Path | None) -> list[str]:
    """URLs to probe: the requested ones, else http://127.0.0.1:<port> for each port the app's .env names."""
    if requested:
        return requested
    if app_dir is None or not (app_dir / ".env").is_file():
        return []
    env = read_env_file(app_dir / ".env")
    return [f"http://127.0.0.1:{env[key]}" for key in PORT_KEYS if env.get(key, "").isdigit()]
