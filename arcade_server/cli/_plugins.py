"""The registry commands: ``arcade publish``, ``plugins``, ``enable`` and ``disable``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._app import Command, client
from ._import import add_import_args, publish_from_index
from ._output import Table, ago, fail, print_json, size, styled

__all__ = ["disable", "enable", "plugins", "publish"]


class _Progress:
    """A transient upload progress line on stderr (a terminal), cleared when done."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.shown = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown < 0.1 and self.done < self.total:
            return
        self.shown = now
        bar = 30
        filled = int(bar * self.done / max(1, self.total))
        speed = self.done / max(1e-6, now - self.started)
        sys.stderr.write(f"\ruploading {'━' * filled}{' ' * (bar - filled)} "
                         f"{size(self.done)}/{size(self.total)} {size(int(speed))}/s\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def _publish_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("wheels", nargs="*", type=Path, metavar="WHEELS",
                   help="the plugin wheel and its dependency wheels (with --builtin: names "
                   "of built-in plugins, default all)")
    p.add_argument("--builtin", action="store_true",
                   help="publish Arcade's built-in plugins (arcade-cpu, arcade-memory, "
                   "arcade-workspace, ...) with their dependency wheels")
    p.add_argument("--validate", action="store_true", help="dry run: check only")
    p.add_argument("--fetch-deps", action="store_true",
                   help="also publish the wheels of the plugin's dependencies, fetched with "
                   "pip into the wheelhouse (reused when already there)")
    p.add_argument("--wheelhouse", type=Path, help="dependency wheel cache for --fetch-deps "
                   "[env ARCADE_WHEELHOUSE; default ~/.cache/arcade/wheelhouse]")
    p.add_argument("--sign", type=Path, metavar="KEY",
                   help="sign what is published with this private key (NAME.key from "
                   "arcade keys generate): the statement of every wheel uploaded")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE",
                   help="with --sign: the key's passphrase is FILE's first line (else asked)")
    add_import_args(p)  # --from-index, --index-url (issue 15, part "index")


def _publish(args: argparse.Namespace) -> int | None:
    if args.from_index is not None:
        return publish_from_index(args)
    if args.index_url is not None:
        fail("--index-url goes with --from-index REQUIREMENT", 2)
    if args.builtin:
        from ._builtin import publish_builtin

        return publish_builtin(args)
    wheels: list[Path] = args.wheels
    if not wheels:
        fail("give the plugin wheel (and its dependency wheels), or --builtin to publish "
             "the built-in plugins", 2)
    for path in wheels:
        if not path.is_file():
            fail(f"{path} is not a file", 2)
    if args.fetch_deps:
        from arcade_core.builtin import PluginBuildError, builtin_dependency_wheels
        from arcade_core.wheelhouse import WheelhouseError

        try:
            extra = builtin_dependency_wheels(wheels, args.wheelhouse)
        except (PluginBuildError, WheelhouseError) as exc:
            fail(f"--fetch-deps: {exc}")
        given = {p.name for p in wheels}
        wheels = [*wheels, *(p for p in extra if p.name not in given)]
    from ._signing import signed_upload

    wheels, fields = signed_upload(args, wheels)
    with client(args) as api:
        total = api.upload_size(wheels)
        if not args.as_json and sys.stderr.isatty() and total > 1024 * 1024:
            progress = _Progress(total)
            try:
                status, body = api.publish(wheels, progress=progress.advance,
                                           validate_only=args.validate, fields=fields)
            finally:
                progress.close()
        else:
            status, body = api.publish(wheels, validate_only=args.validate, fields=fields)
    if args.as_json:
        print_json(body)
        return None
    if args.validate:
        record = body.get("would_record", {})
        print(f"valid: {record.get('name')}@{record.get('version')} "
              f"({len(record.get('wheels', []))} wheel(s))")
        if body.get("existing"):
            print(f"note: {body['existing']}")
        return None
    verb = "published" if status == 201 else "already published (identical)"
    print(f"{verb}: {body['name']}@{body['version']}  sha256 {body['sha256'][:12]}…  "
          f"{len(body['wheels'])} wheel(s), {size(sum(w['size'] for w in body['wheels']))}")
    if body.get("ignored"):
        print(f"not needed, not stored: {', '.join(body['ignored'])}")
    if body.get("signers"):
        print(f"signed by: {', '.join(s['key_id'] for s in body['signers'])}")
    return None


publish = Command("publish", "Publish a plugin wheel (and the wheels of its dependencies), or "
                  "the built-ins.", _publish_args, _publish)


def _plugins_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="show one plugin")
    p.add_argument("--type", help="filter by manifest type")
    p.add_argument("--text", help="search name/summary")


def _plugins(args: argparse.Namespace) -> None:
    with client(args) as api:
        if args.name:
            plugin = api.plugin(args.name)
            latest = api.version(plugin["name"], plugin["latest"]) if plugin["latest"] else None
            if args.as_json:
                print_json({**plugin, "latest_version": latest})
                return
            enabled = "enabled" if plugin["enabled"] else "DISABLED"
            print(f"{styled(plugin['name'], 'bold')}  ({enabled})"
                  f"  {plugin['description'] or plugin['summary']}")
            table = Table.of("version", "type", "size", "sha256", "published", "signed by")
            for release in plugin["releases"]:
                signers = ", ".join(s["key_id"] for s in release.get("signers", []))
                table.add_row(release["version"], release["type"], size(release["size"]),
                              release["sha256"][:12] + "…", ago(release["created_at"]),
                              signers or "unsigned")
            table.print()
            if latest and latest.get("agents"):
                print("agents running the latest version: " + ", ".join(
                    f"{a['agent']} ({a['state'] or 'pending'})" for a in latest["agents"]))
            return
        items = api.plugins(type=args.type, text=args.text)
    if args.as_json:
        print_json(items)
        return
    if not items:
        print("no plugins published yet: arcade publish WHEEL...")
        return
    table = Table.of("name", "latest", "versions", "type", "enabled", "description")
    for p in items:
        table.add_row(p["name"], p["latest"] or "-", str(len(p["versions"])), p["type"],
                      "yes" if p["enabled"] else "no", p["description"] or p["summary"])
    table.print()


plugins = Command("plugins", "List published plugins, or show one with its versions.",
                  _plugins_args, _plugins)


def _name_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")


def _set_enabled(enabled: bool) -> Command:
    def run(args: argparse.Namespace) -> None:
        with client(args) as api:
            result = api.set_enabled(args.name, enabled)
        if args.as_json:
            print_json(result)
        else:
            print(f"{result['name']}: {'enabled' if enabled else 'disabled'}")

    if enabled:
        return Command("enable", "Allow new assignments of a plugin.", _name_arg, run)
    return Command("disable", "Refuse new assignments of a plugin (agents already running "
                   "it keep it).", _name_arg, run)


enable = _set_enabled(True)
disable = _set_enabled(False)
