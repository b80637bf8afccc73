"""ed25519 verification with the OpenSSL that Python's :mod:`ssl` has already loaded.

An agent with trusted keys checks one or two ed25519 signatures per install. With
:mod:`cryptography` that first check would load its Rust binding (~7 MB resident) into the
agent for the rest of its life, against a 50 MB goal for an idle agent. Every CPython with
:mod:`ssl` already maps an OpenSSL ``libcrypto`` (1.1.1 or later, which has ed25519), so
:func:`ed25519_verify` calls its EVP interface through :mod:`ctypes`: the same algorithm from
the same library family, ~0.1 ms per signature, and no memory beyond a few symbols.

The library is found through the ``_ssl`` extension's own handle (a handle's symbol lookup
covers the libraries it links), never by name, so it is exactly the ``libcrypto`` the
interpreter uses. Where that is not possible (``_ssl`` built into the interpreter, a library
without the functions), :func:`available` is false and callers fall back to ``cryptography``.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

__all__ = ["available", "ed25519_verify"]

_EVP_PKEY_ED25519 = 1087   # NID_ED25519, stable since OpenSSL 1.1.1


@cache
def _library() -> Any:
    """The ``libcrypto`` functions, typed; None when they cannot be reached."""
    try:
        import _ssl

        path = getattr(_ssl, "__file__", None)
        if not path:
            return None
        lib = ctypes.CDLL(path)
        functions = {
            "EVP_PKEY_new_raw_public_key": (ctypes.c_void_p, [
                ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
            "EVP_PKEY_free": (None, [ctypes.c_void_p]),
            "EVP_MD_CTX_new": (ctypes.c_void_p, []),
            "EVP_MD_CTX_free": (None, [ctypes.c_void_p]),
            "EVP_DigestVerifyInit": (ctypes.c_int, [
                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                ctypes.c_void_p]),
            "EVP_DigestVerify": (ctypes.c_int, [
                ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                ctypes.c_size_t]),
            "ERR_clear_error": (None, []),
        }
        for name, (restype, argtypes) in functions.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
    except (ImportError, OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    """Whether :func:`ed25519_verify` can run in this interpreter."""
    return _library() is not None


def ed25519_verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` (64 bytes) is ``public_key``'s (32 raw bytes) valid ed25519
    signature of ``data``. Call only when :func:`available`."""
    lib = _library()
    if lib is None:
        raise RuntimeError("libcrypto is not reachable through the ssl module")
    pkey = lib.EVP_PKEY_new_raw_public_key(_EVP_PKEY_ED25519, None, public_key,
                                           len(public_key))
    if not pkey:
        lib.ERR_clear_error()
        return False
    ctx = lib.EVP_MD_CTX_new()
    try:
        if not ctx or lib.EVP_DigestVerifyInit(ctx, None, None, None, pkey) != 1:
            return False
        return bool(lib.EVP_DigestVerify(ctx, signature, len(signature), data, len(data)) == 1)
    finally:
        if ctx:
            lib.EVP_MD_CTX_free(ctx)
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()   # leave no failure in the thread's queue for ssl to trip on
