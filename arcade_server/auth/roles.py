"""The operator roles and the :class:`Principal` a verified credential stands for.

``viewer`` reads everything; ``publisher`` is a viewer that may also publish and validate
plugins; ``operator`` is a viewer that may also change what agents run (install, uninstall,
config, assignments, enable/disable, jobs); ``admin`` may do everything, including tokens,
deleting versions and reading the audit log. ``publisher`` and ``operator`` do not include
each other. A route names the one role it needs; :meth:`Role.includes` says whether a
caller's role is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ActorKind", "Principal", "Role"]


class Role(StrEnum):
    """What an API token may do (see the module docstring)."""

    VIEWER = "viewer"
    PUBLISHER = "publisher"
    OPERATOR = "operator"
    ADMIN = "admin"

    def includes(self, needed: Role) -> bool:
        """Whether a caller holding this role may do what ``needed`` allows."""
        return needed in _GRANTS[self]

    def holders(self) -> list[Role]:
        """The roles that include this one (for "needs the operator role (or admin)")."""
        return [role for role in Role if role.includes(self)]


_GRANTS: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.PUBLISHER: frozenset({Role.VIEWER, Role.PUBLISHER}),
    Role.OPERATOR: frozenset({Role.VIEWER, Role.OPERATOR}),
    Role.ADMIN: frozenset(Role),
}


class ActorKind(StrEnum):
    """Who an audit row's actor is: an API token, an enrolled agent, the server itself, or
    a caller that presented no valid credential."""

    TOKEN = "token"
    AGENT = "agent"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: ``name`` is the token's name (or the agent's id), ``role`` what it
    may do; ``token_id`` is the token's row id (None for agents)."""

    name: str
    role: Role
    kind: ActorKind = ActorKind.TOKEN
    token_id: int | None = None

    def may(self, needed: Role) -> bool:
        """Whether this caller may do what ``needed`` allows."""
        return self.role.includes(needed)
