"""``arcade keys``: make a signing key pair, and see or change which keys a plugin name
accepts (the server's publish policy).

* ``arcade keys generate NAME [--dir DIR]`` writes ``NAME.key`` (PKCS#8 PEM, mode 0600,
  written atomically; encrypted with a passphrase from ``--passphrase-file`` or asked on a
  terminal, never from a flag value) and ``NAME.pub`` (one line: the base64 of the raw public
  key, what agents' ``[[trust.keys]]`` and ``arcade keys transfer --add`` read), and prints
  the key id. It refuses to overwrite either file.
* ``arcade keys claims NAME``: the keys new versions of NAME must be signed by.
* ``arcade keys transfer NAME --add X.pub --remove KEYID``: an admin changes them (a second
  publisher, a rotation, a transfer; removing every key releases the claim).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arcade_core import signing
from arcade_core.files import write_private

from ._access import shared_options, when
from ._app import Command, client
from ._output import Table, fail, print_json
from ._signing import read_passphrase

__all__ = ["generate_key", "keys"]


def generate_key(name: str, directory: Path, passphrase: bytes | None = None) -> str:
    """Write ``NAME.key`` and ``NAME.pub`` in ``directory``; return the key id. Raises
    :class:`FileExistsError` when either exists (nothing is written then)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise FileExistsError(path)
    key = Ed25519PrivateKey.generate()
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    write_private(private_path, pem)
    write_private(public_path, signing.public_key_text(raw) + "\n", mode=0o644)
    return signing.key_id(raw)


def _check_name(name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        fail(f"{name!r} is not a key name: give a plain file name such as 'release' "
             "(use --dir for the directory)", 2)
    return name


def _generate(args: argparse.Namespace) -> None:
    name = _check_name(args.name)
    directory: Path = args.dir or Path.cwd()
    passphrase = None
    if not args.no_passphrase:
        passphrase = read_passphrase(args.passphrase_file, confirm=True,
                                     prompt=f"passphrase for {name}.key (empty: none): ")
    try:
        key_id = generate_key(name, directory, passphrase)
    except FileExistsError as exc:
        fail(f"{exc.args[0]} exists: refusing to overwrite a key; pick another NAME or --dir",
             2)
    except OSError as exc:
        fail(f"cannot write the key in {directory}: {exc.strerror or exc}")
    result = {"key_id": key_id, "private_key": str(directory / f"{name}.key"),
              "public_key": str(directory / f"{name}.pub"), "encrypted": bool(passphrase)}
    if args.as_json:
        print_json(result)
        return
    print(f"key id {key_id}")
    print(f"  private: {result['private_key']} (mode 0600"
          f"{', passphrase-protected' if passphrase else ''}): keep it offline, back it up")
    print(f"  public:  {result['public_key']}: give it to agents ([[trust.keys]] file = ...)")
    print(f"next: arcade publish WHEEL... --sign {result['private_key']}")


def _read_public(path: Path) -> str:
    try:
        raw = signing.parse_public_key(path.read_text(encoding="utf-8"), source=str(path))
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}", 2)
    except signing.SigningKeyError as exc:
        fail(str(exc), 2)
    return signing.public_key_text(raw)


def _print_keys(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    keys = result["keys"]
    assert isinstance(keys, list)
    if not keys:
        print(f"{result['name']}: not claimed (any publisher may publish it, signed or not; "
              "the first signed publish claims it)")
        return
    print(f"{result['name']}: new versions must be signed by one of")
    table = Table.of("key id", "added", "public key")
    for key in keys:
        table.add_row(key["key_id"], when(key["added_at"]), key["public_key"])
    table.print()


def _claims(args: argparse.Namespace) -> None:
    with client(args) as api:
        _print_keys(api.plugin_keys(args.name), args.as_json)


def _transfer(args: argparse.Namespace) -> None:
    if not args.add and not args.remove:
        fail("nothing to change: give --add KEY.pub and/or --remove KEYID", 2)
    added = {signing.key_id(signing.parse_public_key(text)): text
             for text in (_read_public(path) for path in args.add or [])}
    with client(args) as api:
        current = {key["key_id"]: key["public_key"]
                   for key in api.plugin_keys(args.name)["keys"]}
        unknown = [key_id for key_id in args.remove or [] if key_id not in current]
        if unknown:
            fail(f"{args.name} is not claimed by {', '.join(unknown)} (its keys: "
                 f"{', '.join(current) or 'none'}); nothing changed", 2)
        wanted = {**current, **added}
        for key_id in args.remove or []:
            wanted.pop(key_id, None)
        result = api.set_plugin_keys(args.name, list(wanted.values()))
    _print_keys(result, args.as_json)


def _keys_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = shared_options(sub.add_parser("generate", help="write an ed25519 key pair: NAME.key "
                                        "(0600) and NAME.pub"))
    gen.add_argument("name", metavar="NAME", help="file name of the pair (NAME.key, NAME.pub)")
    gen.add_argument("--dir", type=Path, metavar="DIR", help="where (default: here)")
    how = gen.add_mutually_exclusive_group()
    how.add_argument("--passphrase-file", type=Path, metavar="FILE",
                     help="encrypt NAME.key with the passphrase on FILE's first line (without "
                     "it, a terminal is asked; empty: not encrypted)")
    how.add_argument("--no-passphrase", action="store_true",
                     help="do not encrypt NAME.key, and do not ask")
    gen.set_defaults(run=_generate)
    claims = shared_options(sub.add_parser("claims", help="the keys a plugin name accepts new "
                                           "versions signed by"))
    claims.add_argument("name", metavar="NAME", help="plugin name")
    claims.set_defaults(run=_claims)
    transfer = shared_options(sub.add_parser(
        "transfer", help="(admin) add or remove keys of a plugin name: a second publisher, a "
        "rotation, a transfer"))
    transfer.add_argument("name", metavar="NAME", help="plugin name")
    transfer.add_argument("--add", action="append", type=Path, metavar="KEY.pub",
                          help="accept versions signed by this public key (repeatable)")
    transfer.add_argument("--remove", action="append", metavar="KEYID",
                          help="stop accepting this key id (repeatable; removing all keys "
                          "releases the claim)")
    transfer.set_defaults(run=_transfer)


def _keys(args: argparse.Namespace) -> None:
    args.run(args)


keys = Command("keys", "Make signing keys; see or change the keys a plugin name accepts.",
               _keys_args, _keys)
