"""Plugins from a package index (issue 15, part "index"): ``arcade publish --from-index
REQUIREMENT [--index-url URL]`` and ``arcade updates NAME``.

``updates`` is a command of its own rather than ``arcade plugins NAME --updates``: it makes the
server read a package index (seconds, and it can fail with 502 when the index is down), while
``arcade plugins`` only reads the registry; keeping them apart keeps ``plugins`` fast and
offline, and gives ``updates`` its own exit status for scripts (1 when newer versions exist
with ``--check``).
"""

from __future__ import annotations

import argparse

from ._app import Command, client
from ._output import fail, print_json, size

__all__ = ["add_import_args", "publish_from_index", "updates"]


def add_import_args(p: argparse.ArgumentParser) -> None:
    """``publish``'s options for an import: ``--from-index`` and ``--index-url``."""
    p.add_argument("--from-index", metavar="REQUIREMENT",
                   help="publish from a package index instead of files: the server resolves "
                   "the requirement (e.g. 'arcade-foo==1.2') and its dependencies for its "
                   "agents' platforms, checks the index's hashes and publishes them")
    p.add_argument("--index-url", metavar="URL",
                   help="the PEP 503/691 index for --from-index (http(s); default: the "
                   "server's index_url setting, https://pypi.org/simple/ unless changed)")


def publish_from_index(args: argparse.Namespace) -> int | None:
    """``arcade publish --from-index``: ask the server to import; print what it published."""
    if args.wheels or args.builtin or args.fetch_deps or args.validate:
        fail("--from-index publishes from the index: give no wheel files, --builtin, "
             "--fetch-deps or --validate with it", 2)
    with client(args) as api:
        body = api.import_plugin(args.from_index, index_url=args.index_url)
    if args.as_json:
        print_json(body)
        return None
    verb = "published" if body["created"] else "already published (identical)"
    print(f"{verb}: {body['name']}@{body['version']} from {body['index_url']}  "
          f"sha256 {body['sha256'][:12]}…  {len(body['wheels'])} wheel(s), "
          f"{size(sum(w['size'] for w in body['wheels']))}")
    print(f"resolved for: {'; '.join(body['platforms'])}")
    if body.get("note"):
        print(f"note: {body['note']}")
    return None


def _updates_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="plugin name")
    p.add_argument("--index-url", metavar="URL",
                   help="the index to ask (default: the one its newest imported version came "
                   "from)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the index has a newer version (for scripts)")


def _updates(args: argparse.Namespace) -> int | None:
    with client(args) as api:
        body = api.plugin_updates(args.name, index_url=args.index_url)
    if args.as_json:
        print_json(body)
    elif body["up_to_date"]:
        print(f"{body['name']} {body['published']} is up to date with {body['index_url']}")
    else:
        print(f"{body['name']}: {body['published']} published; newer on "
              f"{body['index_url']}: {', '.join(body['newer'])}")
        print(f"publish the newest with: arcade publish --from-index "
              f"'{body['name']}=={body['newer'][0]}' --index-url {body['index_url']}")
    return 1 if args.check and not body["up_to_date"] else None


updates = Command("updates", "Show the newer versions of a plugin on its package index.",
                  _updates_args, _updates)
