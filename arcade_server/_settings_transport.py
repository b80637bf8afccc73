"""The transport block of the server's settings (bind hosts, certificates, ``san``),
checked and normalized for :class:`~arcade_server.settings.Settings`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from ._settings_values import is_loopback
from .errors import SettingsError

__all__ = ["TransportFields", "transport_values"]


class TransportFields(Protocol):
    """The settings :func:`transport_values` reads (a :class:`~arcade_server.settings.Settings`
    being built; a protocol, so this module does not import the one that imports it)."""

    @property
    def san(self) -> tuple[str, ...] | str: ...
    @property
    def http_host(self) -> str: ...
    @property
    def grpc_host(self) -> str: ...
    @property
    def http_tls(self) -> str: ...
    @property
    def agent_cert_days(self) -> float: ...
    @property
    def tls_ca_file(self) -> Path | None: ...
    @property
    def tls_ca_key_file(self) -> Path | None: ...
    @property
    def tls_cert_file(self) -> Path | None: ...
    @property
    def tls_key_file(self) -> Path | None: ...


def transport_values(s: TransportFields) -> dict[str, Any]:
    """The normalized transport settings of ``s`` (``san`` as a tuple, certificate paths as
    :class:`~pathlib.Path` or None); raises :class:`SettingsError` naming what to fix."""
    values: dict[str, Any] = {}
    san = s.san
    if isinstance(san, str):
        san = tuple(part.strip() for part in san.split(",") if part.strip())
    values["san"] = tuple(str(name).strip() for name in san)
    for name in values["san"]:
        if not re.match(r"^[A-Za-z0-9*][A-Za-z0-9.:*_\[\]-]*$", name):
            raise SettingsError(f"san: {name!r} is not a DNS name or an IP address")
    for name in ("http_host", "grpc_host"):
        if not str(getattr(s, name)).strip():
            raise SettingsError(f"{name}: must be an address such as 127.0.0.1 or 0.0.0.0")
    for name in ("tls_ca_file", "tls_ca_key_file", "tls_cert_file", "tls_key_file"):
        value = getattr(s, name)
        values[name] = Path(value).expanduser() if value is not None and str(value) != "" \
            else None
    if (values["tls_ca_file"] is None) != (values["tls_ca_key_file"] is None):
        raise SettingsError("tls_ca_file and tls_ca_key_file go together: the CA signs the "
                            "server certificate and every agent certificate")
    if (values["tls_cert_file"] is None) != (values["tls_key_file"] is None):
        raise SettingsError("tls_cert_file and tls_key_file go together")
    if s.http_tls not in ("auto", "on", "off"):
        raise SettingsError(f"http_tls: {s.http_tls!r} is not auto, on or off")
    if s.http_tls == "off" and not is_loopback(s.http_host):
        raise SettingsError(
            f"http_host {s.http_host!r} is beyond loopback and http_tls is off: REST "
            "would carry tokens in clear text. Use http_tls = auto (HTTPS with the server "
            "certificate) or bind http_host to 127.0.0.1")
    if not 0 < s.agent_cert_days <= 3650:
        raise SettingsError(
            f"agent_cert_days: {s.agent_cert_days} is outside (0, 3650] days")
    return values
