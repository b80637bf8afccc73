"""``/api/v1/plugins/{name}/...``: signatures of published versions and the publish policy's
keys of a name (which signed versions a claimed name accepts)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ...auth.roles import Role
from ...errors import Invalid
from ...services import plugin_keys, signatures
from ...state import ServerState
from ..auth import needs
from ..deps import get_state
from ..schemas import PluginKeys, PluginKeysRequest, SignatureRequest, Signer, errors

__all__ = ["decode_base64", "router"]

router = APIRouter(prefix="/plugins", tags=["plugins"])

State = Annotated[ServerState, Depends(get_state)]


def decode_base64(text: str, what: str) -> bytes:
    """``text`` decoded, or :class:`Invalid` (422) naming ``what`` and the form it needs."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{what}: not base64 (send the base64 of the raw bytes, as "
                      "`arcade keys generate` writes NAME.pub)") from None


@router.post(
    "/{name}/versions/{version}/signatures",
    status_code=201,
    summary="Add a signature of a published version",
    response_model=Signer,
    responses=errors(s404="no plugin of that name is published, or it has no such version",
                     s422="bad base64, wrong sizes, or the signature does not verify for the "
                     "version's statement"),
    dependencies=[needs(Role.PUBLISHER)],
)
async def add_signature(name: str, version: str, body: SignatureRequest,
                        state: State) -> dict[str, Any]:
    """Store a signature of ``name==version``'s statement after checking it (the same key
    signing again replaces its signature). Any key may co-sign; agents decide whom they
    trust."""
    public_key = decode_base64(body.public_key, "public_key")
    signature = decode_base64(body.signature, "signature")
    normalized = plugin_keys.plugin_name(name)
    added = await state.db.run(signatures.add, normalized, version, public_key=public_key,
                               signature=signature)
    await state.notifier.desired_changed(added["agents"])
    return added


@router.get("/{name}/keys", summary="The keys a claimed plugin name accepts",
            response_model=PluginKeys, responses=errors(s422="not a plugin name"),
            dependencies=[needs(Role.VIEWER)])
async def get_keys(name: str, state: State) -> dict[str, Any]:
    """The keys new versions of ``name`` must be signed by (none: the name is not claimed)."""
    return await state.db.read(plugin_keys.keys_of, name)


@router.put("/{name}/keys", summary="Set the keys a plugin name accepts (transfer, rotate)",
            response_model=PluginKeys,
            responses=errors(s422="not a plugin name, bad base64 or a key of the wrong size"),
            dependencies=[needs(Role.ADMIN)])
async def set_keys(name: str, body: PluginKeysRequest, state: State) -> dict[str, Any]:
    """Replace the keys ``name`` accepts new versions signed by (``[]`` releases the claim;
    a name may be claimed before anything is published under it)."""
    keys = [decode_base64(text, f"keys[{index}]") for index, text in enumerate(body.keys)]
    return await state.db.run(plugin_keys.set_keys, name, keys)
