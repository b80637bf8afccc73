"""Who is calling: the operator roles and the :class:`~arcade_server.auth.roles.Principal`
a verified credential (an API token today; an agent certificate later) stands for.

Plain values only: the REST layer (:mod:`arcade_server.api.auth`) checks tokens against them
and the services (:mod:`arcade_server.services.tokens`, :mod:`arcade_server.services.audit`)
store and return them.
"""

__all__: list[str] = []
