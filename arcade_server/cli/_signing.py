"""Signing from the command line: read a private key, sign the statement of the wheels a
publish uploads (``arcade publish --sign``), and ``arcade sign NAME@VERSION --key KEY`` to add
a signature to a version already published.

The statement (:func:`arcade_core.signing.statement`) covers exactly the wheels the server
records, so :func:`sign_upload` works out that set the way the server does (the plugin wheel
and the dependency wheels it requires, :func:`arcade_core.requirements.check_requirements`)
and uploads only those. ``cryptography`` is imported here only, when a key is used.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from arcade_core import signing

from ._app import Command, client
from ._output import fail, print_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["load_private_key", "read_passphrase", "sign", "sign_upload", "signature_fields",
           "signed_upload"]


def read_passphrase(path: Path | None, *, prompt: str, confirm: bool = False) -> bytes | None:
    """The passphrase from ``path`` (its first line), else asked on a terminal (``None`` when
    there is no terminal: the key is not protected / cannot be read)."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            fail(f"--passphrase-file {path}: {exc.strerror or exc}", 2)
        if not text or not text[0]:
            fail(f"--passphrase-file {path}: the first line (the passphrase) is empty", 2)
        return text[0].encode("utf-8")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if confirm and first and getpass.getpass("again: ") != first:
        fail("the passphrases differ", 2)
    return first.encode("utf-8") or None


def load_private_key(path: Path, passphrase_file: Path | None = None) -> Ed25519PrivateKey:
    """The ed25519 private key in ``path`` (PKCS#8 PEM, as ``arcade keys generate`` writes
    it), asking for its passphrase when it is encrypted."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}", 2)
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    passphrase = None
    if encrypted:
        passphrase = read_passphrase(passphrase_file, prompt=f"passphrase of {path}: ")
        if passphrase is None:
            fail(f"{path} is passphrase-protected: give --passphrase-file FILE (or run on a "
                 "terminal to be asked)", 2)
    try:
        key = load_pem_private_key(data, passphrase)
    except (ValueError, TypeError) as exc:
        reason = "wrong passphrase, or " if encrypted else ""
        fail(f"{path}: cannot read the private key ({reason}not a PKCS#8 PEM key: {exc}); "
             "make one with `arcade keys generate NAME`", 2)
    if not isinstance(key, Ed25519PrivateKey):
        fail(f"{path}: not an ed25519 key; make one with `arcade keys generate NAME`", 2)
    return key


def signature_fields(key: Ed25519PrivateKey, name: str, version: str,
                     wheels: dict[str, str]) -> dict[str, str]:
    """The form fields (or JSON body) of a signature of ``name==version`` over ``wheels``
    (filename → sha256): ``public_key`` and ``signature``, base64."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    made = signing.sign(key, signing.statement(name, version, wheels))
    return {"public_key": signing.public_key_text(raw),
            "signature": base64.b64encode(made.signature).decode("ascii")}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def sign_upload(key: Ed25519PrivateKey, paths: Sequence[Path]
                ) -> tuple[list[Path], dict[str, str]]:
    """The wheels to upload (those the server records: the plugin wheel and the dependency
    wheels it requires) and the signature fields over exactly them. Wheels that cannot be
    inspected here are all signed and sent: the server then says what is wrong with them."""
    from arcade_core import ArcadeError, inspect_wheel
    from arcade_core.requirements import check_requirements

    try:
        infos = [inspect_wheel(path, plugin=False) for path in paths]
        plugins = [info for info in infos if info.is_plugin]
        if len(plugins) != 1:
            raise ArcadeError("not exactly one plugin wheel")
        kept = check_requirements(plugins[0], [i for i in infos if not i.is_plugin])
    except ArcadeError:
        return list(paths), {}
    wheels = {info.filename: info.sha256 for info in kept}
    by_name = {path.name: path for path in paths}
    fields = signature_fields(key, plugins[0].name, plugins[0].version, wheels)
    return [by_name[filename] for filename in wheels], fields


def signed_upload(args: argparse.Namespace, wheels: list[Path]
                  ) -> tuple[list[Path], dict[str, str] | None]:
    """With ``--sign`` (and not ``--validate``): the wheels to upload and the signature
    fields over exactly them (wheels nothing requires are left out, and said so)."""
    if args.sign is None or args.validate:
        return wheels, None
    key = getattr(args, "loaded_key", None) or load_private_key(args.sign, args.passphrase_file)
    args.loaded_key = key
    kept, fields = sign_upload(key, wheels)
    left = [path.name for path in wheels if path not in kept]
    if left and not args.as_json:
        sys.stderr.write(f"not needed, not uploaded: {', '.join(left)}\n")
    return kept, fields or None


# ---------------------------------------------------------------- arcade sign


def _sign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="NAME@VERSION", help="the published version to sign")
    p.add_argument("--key", required=True, type=Path, metavar="KEY",
                   help="your private key (NAME.key from arcade keys generate)")
    p.add_argument("--passphrase-file", type=Path, metavar="FILE",
                   help="read the key's passphrase from FILE's first line (else asked)")
    p.add_argument("--wheels", nargs="+", type=Path, metavar="WHEEL",
                   help="the wheel files you reviewed: sign only if the registry's wheels are "
                   "exactly these (by sha256); without it, you sign the wheels as the "
                   "registry lists them")


def _run_sign(args: argparse.Namespace) -> None:
    name, at, version = str(args.spec).partition("@")
    if not at or not name or not version:
        fail(f"{args.spec!r}: give NAME@VERSION, e.g. arcade-cpu@1.0.0", 2)
    key = load_private_key(args.key, args.passphrase_file)
    with client(args) as api:
        detail = api.version(name, version)
        wheels = {w["filename"]: w["sha256"] for w in detail["wheels"]}
        if args.wheels:
            mine = {path.name: _sha256(path) for path in args.wheels}
            if mine != wheels:
                differ = sorted(f for f in set(mine) | set(wheels) if mine.get(f) != wheels.get(f))
                fail(f"the registry's wheels of {detail['name']}@{detail['version']} are not the "
                     f"ones given (different or missing: {', '.join(differ)}); nothing signed")
        fields = signature_fields(key, detail["name"], detail["version"], wheels)
        signer = api.add_signature(detail["name"], detail["version"], **fields)
    if args.as_json:
        print_json({"name": detail["name"], "version": detail["version"], **signer})
    else:
        print(f"signed {detail['name']}@{detail['version']} ({len(wheels)} wheel(s)) with key "
              f"{signer['key_id']}")


sign = Command("sign", "Add your signature to a published plugin version.", _sign_args,
               _run_sign)
