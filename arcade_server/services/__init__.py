"""Service functions shared by the REST routers and the gRPC servicer: the server's rules.

Most are plain synchronous functions taking a SQLAlchemy Core connection (run in the database
thread pool by :meth:`arcade_server.db.engine.Database.run`, one transaction per call); they
take and return plain Python values (dataclasses, dicts) and raise
:mod:`arcade_server.errors` for anything the caller got wrong. A few async ones
(:func:`~arcade_server.services.publishing.publish`, the job delivery and sweep of
:mod:`~arcade_server.services.job_runs`) run those and announce what agents must hear through
the :class:`~arcade_server.services.notifier.Notifier`.

Layering: services import only :mod:`arcade_server.db`, :mod:`arcade_server.errors`,
:mod:`arcade_server.storage` and :mod:`arcade_core` (never ``rpc``, ``api``, ``state``,
gRPC or protobuf); ``tests/test_architecture.py`` checks it.
"""

__all__: list[str] = []
