"""``arcade publish --builtin [NAME...]``: publish Arcade's built-in plugins, each with the
wheels of its dependencies, in one command.

On a fresh server nothing is published, so ``arcade run ... arcade-workspace@1.0.0`` or
``arcade install arcade-cpu@1.0.0`` has nothing to install. This publishes the built-ins
(:func:`arcade_core.builtin.builtin_wheels`: built from a checkout's ``plugins/``, or the
wheels shipped inside an installed arcade-fleet) and their dependency wheels (psutil: fetched
with pip into the wheelhouse once, then reused). Publishing is idempotent: a plugin already
published with the same content answers "already published". Every plugin is tried; the
exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._app import client
from ._output import fail, print_json, size
from ._signing import signed_upload

__all__ = ["publish_builtin"]


def publish_builtin(args: argparse.Namespace) -> int:
    """Publish the built-ins named in ``args.wheels`` (all when none); return the exit code."""
    from arcade_core.builtin import PluginBuildError, builtin_dependency_wheels, builtin_wheels
    from arcade_core.wheelhouse import WheelhouseError

    from ..client import ApiError

    names = [str(n) for n in args.wheels]
    say = (lambda text: None) if args.as_json else _say
    results: list[dict[str, Any]] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="arcade-builtin-") as tmp:
        try:
            say("finding the built-in plugins ...")
            wheels = builtin_wheels(Path(tmp), names)
            say("gathering their dependency wheels (pip, cached in the wheelhouse) ...")
            deps = {name: builtin_dependency_wheels([wheel], args.wheelhouse)
                    for name, wheel in wheels.items()}
        except (PluginBuildError, WheelhouseError) as exc:
            fail(f"--builtin: {exc}")
        with client(args) as api:
            for name, wheel in wheels.items():
                paths, fields = signed_upload(args, [wheel, *deps[name]])
                try:
                    status, body = api.publish(paths, validate_only=args.validate,
                                               fields=fields)
                except ApiError as exc:
                    failed += 1
                    results.append({"name": name, "error": exc.message})
                    sys.stderr.write(f"error: {name}: {exc.message}\n")
                    continue
                results.append({"name": name, "status": status, **body})
                if not args.as_json:
                    print(_line(name, status, body, args.validate))
    if args.as_json:
        print_json(results)
    elif not failed and not args.validate:
        first = results[0]
        print(f"next: arcade install {first['name']}@{first['version']} --agent ID "
              "(arcade agents lists the agents)")
    return 1 if failed else 0


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _line(name: str, status: int, body: dict[str, Any], validate: bool) -> str:
    if validate:
        record = body.get("would_record", {})
        return (f"valid: {record.get('name', name)}@{record.get('version')} "
                f"({len(record.get('wheels', []))} wheel(s))")
    verb = "published" if status == 201 else "already published (identical)"
    return (f"{verb}: {body['name']}@{body['version']}  "
            f"{len(body['wheels'])} wheel(s), {size(sum(w['size'] for w in body['wheels']))}")
