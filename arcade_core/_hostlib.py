"""``<home>/host-lib``: the only host code a plugin's child process can import.

It holds two symlinks, to the host's ``arcade_core`` and ``pluggy`` packages; a child gets
it (and nothing else of the host's site-packages) on its ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pluggy

__all__ = ["child_environment", "ensure_host_lib"]


def ensure_host_lib(home: Path) -> Path:
    """Return ``<home>/host-lib``, creating or refreshing it atomically.

    It holds two symlinks, ``arcade_core`` and ``pluggy``, to the packages this host runs;
    a child gets it (and nothing else of the host's site-packages) on its ``PYTHONPATH``.
    Built in a temp dir and renamed into place, so a reader never sees it half made.
    """
    target = home / "host-lib"
    wanted = {
        "arcade_core": os.path.realpath(os.path.dirname(__file__)),
        "pluggy": os.path.realpath(os.path.dirname(pluggy.__file__)),
    }

    def current() -> bool:
        try:
            return all(os.readlink(target / name) == path for name, path in wanted.items())
        except OSError:
            return False

    if current():
        return target
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".host-lib-", dir=home))
    try:
        for name, path in wanted.items():
            os.symlink(path, tmp / name, target_is_directory=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if current():  # another host sharing this home won the race
                return target
            trash = Path(tempfile.mkdtemp(prefix=".host-lib-old-", dir=home))
            os.rename(target, trash / "host-lib")
            os.rename(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def child_environment(host_lib: Path) -> dict[str, str]:
    """The environment variables of a child: the host's, without its ``PYTHON*`` ones,
    with ``host_lib`` as the only ``PYTHONPATH`` and no bytecode written (environments are
    immutable once built: a ``__pycache__`` in one is drift to the agent)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(host_lib)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env
