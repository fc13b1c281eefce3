"""pylint's view of the app's environment: its site-packages read, never imported.

pylint's `--init-hook` calls `read_only(path)`: the folder goes at the end of `sys.path` (the analyzer's own
packages come first; no `.pth` file in it is processed, as `site` would), where astroid finds the app's packages
and builds them from their source. A Python import that would load a module from that folder is refused by a
finder placed first on `sys.meta_path`, so nothing of the app's environment runs here (astroid finds modules with
its own finders, which pass this one by); pylint's `unsafe-load-any-extension` stays off, so no C extension of it
is loaded either.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class RefuseFolder:
    """A meta path finder that refuses every import whose module lies in `folder`."""

    def __init__(self, folder: str) -> None:
        self.folder = os.path.abspath(folder)

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        del target
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        origin = spec.origin if spec.has_location else None
        locations = list(spec.submodule_search_locations or [])
        # a module or package file of the folder; or a namespace package only the folder holds (one it shares
        # with the analyzer's own packages stays importable: it has no code, and its modules are judged one by one)
        if (origin and self._holds(origin)) or (
            origin is None and locations and all(map(self._holds, locations))
        ):
            # the analyzer's own module of that name, if it has one, wins over the folder's (a regular package there
            # would otherwise hide a namespace package the analyzer's own code imports from)
            own = importlib.machinery.PathFinder.find_spec(name, self._without(path))
            if own is None:
                raise ImportError(f"{name} is in the app's environment: read by pylint, never imported")
            return own
        return None  # the usual finders decide

    def _without(self, path: Sequence[str] | None) -> list[str]:
        """The search path (sys.path for a top-level module) with the folder and what is in it left out."""
        places = sys.path if path is None else path
        return [place for place in places if os.path.abspath(place) != self.folder and not self._holds(place)]

    def _holds(self, place: str) -> bool:
        return os.path.abspath(place).startswith(self.folder + os.sep)


def _forget_missing() -> None:
    """A warm server's child starts from astroid's state after the warm-up, which remembers the imports it could
    not find then (its lookups are cached without sys.path in their keys): forgotten, so that the folder just added
    is searched. What astroid built stays."""
    finders = sys.modules.get("astroid.interpreter._import.spec")
    for value in vars(finders).values() if finders else ():
        for cached in (value, getattr(value, "find_module", None)):
            clear = getattr(cached, "cache_clear", None)
            if clear is not None:
                clear()
    manager = sys.modules.get("astroid.manager")
    if manager is not None:
        found = manager.AstroidManager.brain["_mod_file_cache"]
        for key in [key for key, value in found.items() if isinstance(value, Exception)]:
            del found[key]


def read_only(folder: str) -> None:
    """Let astroid read `folder` (an app's site-packages) and refuse any import from it."""
    folder = os.path.abspath(folder)
    if not any(isinstance(finder, RefuseFolder) and finder.folder == folder for finder in sys.meta_path):
        sys.meta_path.insert(0, RefuseFolder(folder))
    if folder not in sys.path:
        sys.path.append(folder)
    _forget_missing()
