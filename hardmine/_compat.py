"""The module paths of hardmine 0.3.0, before the package was laid out in parts, kept working for one release.

``import hardmine.miner`` (or ``from hardmine.metrics import summary``) gives the module that lives at the new path
(:mod:`hardmine.feedback.miner`) with a :class:`DeprecationWarning` naming it; the public submodules
(``hardmine.plot``, ``hardmine.plot_dense``, ``hardmine.tasks``) answer without a warning. ``hardmine.report`` is not
an old path any more: it is the interactive report function; the static HTML report module is
:mod:`hardmine.app.html_report`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# Old module path -> new module path.
OLD_MODULE_PATHS: dict[str, str] = {
    f"hardmine.{old}": f"hardmine.{new}"
    for old, new in [
        ("table", "core.columns"),
        ("data", "core.data"),
        ("distributed", "core.distributed"),
        ("measures", "scoring.measures"),
        ("tasks", "scoring.tasks"),
        ("dense", "scoring.dense"),
        ("detection", "scoring.detection"),
        ("checkpoint", "scoring.checkpoint"),
        ("streamed", "scoring.streamed"),
        ("splitting", "analysis.splitting"),
        ("metrics", "analysis.metrics"),
        ("dynamics", "analysis.dynamics"),
        ("labels", "analysis.labels"),
        ("io", "analysis.io"),
        ("bigtable", "analysis.bigtable"),
        ("plot", "analysis.plot"),
        ("plot_dense", "analysis.plot_dense"),
        ("interactive", "analysis.interactive"),
        ("weighting", "feedback.weighting"),
        ("sampling", "feedback.sampling"),
        ("sharded", "feedback.sharded"),
        ("miner", "feedback.miner"),
        ("online", "feedback.online"),
        ("selection", "feedback.selection"),
        ("losses", "feedback.losses"),
        ("cli", "app.cli"),
        ("images", "app.images"),
        ("demo", "app.demo"),
    ]
}

# Old paths that are public submodules under the same top-level name: no warning.
_SILENT = {"hardmine.plot", "hardmine.plot_dense", "hardmine.tasks"}


class _OldPathLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        if spec.name not in _SILENT:
            warnings.warn(
                f"the module {spec.name} moved to {self.new}; the old path is deprecated and will be removed in the "
                f"next release: use `import {self.new}`",
                DeprecationWarning,
                stacklevel=2,
            )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """The module at the new path is already executed."""


class _OldPathFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = OLD_MODULE_PATHS.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _OldPathLoader(new))


def install_old_module_paths() -> None:
    """Put the finder of the old module paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())
