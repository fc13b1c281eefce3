"""The bubblewrap command line that confines an app: a read-only system, its own writable copy, a private /tmp,
its own network namespace, no view of anything else on the machine.

The sandbox's root is an empty tmpfs into which only the system folders are bound read-only (so the results, the
database, `var/` and every home folder simply do not exist inside); the app's prepared copy is bound read-only at
/assay/source, its virtualenv read-only at /venv. What it may write is one tmpfs of a fixed size (the disk quota)
at /assay/disk, with /app and /tmp links into it: inside.py copies the app there before starting it. No host
folder is writable inside, so nothing the orchestrator opens on the host can be swapped by the app; what crosses
the boundary goes through descriptors opened before the sandbox starts (channel.py). With `network=False` the
sandbox gets a network namespace of its own with only a loopback device: nothing on the machine or beyond is
reachable, and the probes come in over the channel (see inside.py and forwarder.py). bwrap sets no_new_privs; as
root, Assay first drops to an unprivileged user (`setpriv`), so that the process limit holds.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from services.orchestrator.apps.errors import AppNotStarted, SandboxUnavailable
from shared.wire.app_run import SandboxSettings

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt")
SANDBOX_UID = 65534  # nobody: the app runs as an ordinary user of the machine, never as root
APP_ROOT = "/app"
VENV_ROOT = "/venv"
INIT_PATH = "/assay/init.py"
SOURCE_ROOT = "/assay/source"  # the app's prepared copy, read-only: inside.py copies it onto the disk
DISK_ROOT = "/assay/disk"  # the sandbox's only writable place: a tmpfs of the disk quota's size
DISK_APP = f"{DISK_ROOT}/app"  # what /app links to
DISK_TMP = f"{DISK_ROOT}/tmp"  # what /tmp links to


INIT_FILES = (
    "inside.py",
    "listening.py",
    "static_server.py",
)  # the init, and its stdlib neighbours beside it


def init_binds(folder: Path) -> dict[Path, str]:
    """Copies of the init and its neighbours in `folder` (a folder only Assay writes), readable by the sandbox user
    whatever Assay's umask, as read-only binds: the init at INIT_PATH, the others beside it. Copies, because the
    checkout Assay runs from may sit in a folder only its owner can enter."""
    binds: dict[Path, str] = {}
    for name in INIT_FILES:
        copy = folder / name
        shutil.copyfile(Path(__file__).with_name(name), copy)
        copy.chmod(0o644)
        binds[copy] = INIT_PATH if name == "inside.py" else f"{Path(INIT_PATH).parent}/{name}"
    return binds


def run_limits(settings: SandboxSettings) -> dict[str, int]:
    """inside.py's `limits` for an app's run and its preparation alike (every file bounded by the disk quota)."""
    return {
        "cpu_s": settings.cpu_s,
        "memory_bytes": settings.memory_mb * 1024 * 1024,
        "processes": settings.processes,
        "open_files": settings.open_files,
        "file_bytes": settings.disk_mb * 1024 * 1024,
    }


@dataclass(frozen=True)
class Mounts:
    """Host folders given to a sandbox: writable (`binds`) and read-only (`ro_binds`), host path → inside path."""

    binds: dict[Path, str] = field(default_factory=dict)
    ro_binds: dict[Path, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # inside path → what it links to


def bwrap_path() -> str | None:
    """The bubblewrap binary, or None when it is not installed."""
    return shutil.which("bwrap")


def check_available(mode: str) -> None:
    """Raise SandboxUnavailable with what to do when `mode` is `bwrap` and bubblewrap is missing."""
    if mode == "bwrap" and bwrap_path() is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so Assay refuses to run apps: install it "
            "(`apt-get install bubblewrap`), or set ASSAY_APP_SANDBOX=off to run apps unsandboxed (unsafe)"
        )


def _system_binds() -> list[str]:
    args: list[str] = []
    for folder in SYSTEM_DIRS:
        path = Path(folder)
        if path.is_symlink():  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    return args


def owner_prefix() -> list[str]:
    """As root: drop to the sandbox user before bwrap (capabilities and groups go too). Otherwise nothing."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv") or "setpriv"
    uid = str(SANDBOX_UID)
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def make_reachable(work_dir: Path) -> None:
    """Create the work folder (searchable, not listable, by others) and check the sandbox user can reach it.

    bwrap sets the sandbox up as that user, so every folder above the copies and venvs must be searchable by
    others; AppNotStarted saying which one is not (a home folder, a private temporary folder)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    work_dir.chmod(0o711)
    for folder in work_dir.resolve().parents:
        if not folder.stat().st_mode & 0o001:
            raise AppNotStarted(
                f"app did not start: the sandbox user (uid {SANDBOX_UID}) cannot reach {work_dir}: {folder} is "
                "not searchable by others; set ASSAY_APP_WORK_DIR to a folder it can reach (e.g. /var/tmp/assay-apps)"
            )


def hand_over(path: Path) -> None:
    """Make `path` (a fresh folder tree) the sandbox user's, so the app can write its own copy and nothing else."""
    if os.geteuid() != 0:
        return
    for folder, dirs, files in os.walk(path):
        os.chown(folder, SANDBOX_UID, SANDBOX_UID)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)


def take_back(path: Path) -> None:
    """Make a tree a preparation sandbox wrote (its processes gone) this process's user's, readable by all and
    writable by no one else, so that nothing the sandbox user runs later (an app's run, the next preparation) can
    change what was checked and cached. Links are re-owned, never followed; set-id bits are dropped."""
    uid, gid = os.geteuid(), os.getegid()
    for folder, dirs, files in os.walk(path):  # never descends through a link
        for place in (folder, *(os.path.join(folder, name) for name in dirs + files)):
            status = os.lstat(place)
            if uid == 0 and (status.st_uid, status.st_gid) != (uid, gid):
                os.chown(place, uid, gid, follow_symlinks=False)
            if stat.S_ISLNK(status.st_mode):
                continue
            runnable = stat.S_ISDIR(status.st_mode) or status.st_mode & stat.S_IXUSR
            os.chmod(place, (status.st_mode & 0o755) | 0o444 | (0o111 if runnable else 0))


def bwrap_argv(
    mounts: Mounts, *, network: bool, chdir: str, command: list[str], disk_bytes: int | None = None
) -> list[str]:
    """The full argv: owner prefix, bwrap with its options, then `command` run inside. With `disk_bytes`, /tmp
    (and every link of `mounts`) lives on one tmpfs of that size at DISK_ROOT; without it /tmp is a tmpfs of its
    own."""
    args = [*owner_prefix(), bwrap_path() or "bwrap", "--unshare-all"]
    if network:
        args.append("--share-net")
    args += ["--die-with-parent", *_system_binds(), "--proc", "/proc", "--dev", "/dev"]
    if disk_bytes is None:
        args += ["--tmpfs", "/tmp"]
    else:
        args += ["--size", str(disk_bytes), "--tmpfs", DISK_ROOT, "--dir", DISK_TMP, "--dir", DISK_APP]
        args += ["--symlink", DISK_TMP, "/tmp"]
    for inside, target in mounts.links.items():
        args += ["--symlink", target, inside]
    binds = [("--ro-bind", host, inside) for host, inside in mounts.ro_binds.items()]
    binds += [("--bind", host, inside) for host, inside in mounts.binds.items()]
    # A folder before what is bound inside it (the copy at /app before its node_modules), or it would hide it.
    for option, host, inside in sorted(binds, key=lambda bind: bind[2].count("/")):
        args += [option, str(host), inside]
    args += ["--remount-ro", "/", "--chdir", chdir, "--", *command]  # the root itself is read-only too
    return args
