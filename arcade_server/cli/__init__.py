"""The operator commands of ``arcade``: publish plugins, manage desired state, run jobs.

Each command is a :class:`~arcade_server.cli._app.Command` that the ``arcade`` dispatcher
(:mod:`arcade_core.commands`) finds through the ``arcade.commands`` entry points and calls with
its arguments: the registry commands live in :mod:`._plugins`, the agent and desired-state
commands in :mod:`._agents`, the job commands in :mod:`._jobs`; tables and JSON output in
:mod:`._output`. They talk to the REST API (``--api URL``, default ``$ARCADE_API`` or
``http://127.0.0.1:8080``), print readable tables, or JSON with ``--json`` for scripts. Every
error is one clear line on stderr and a non-zero exit (1: the request failed, 2: bad usage),
never a traceback.

Importing them is cheap: argparse and the stdlib only. The REST client
(:mod:`arcade_server.client`, over :mod:`socket`) is imported when a command sends its
request; the server (FastAPI, SQLAlchemy, grpc), httpx and the agent never.
This package imports nothing itself, so a command loads only its own module.
"""

__all__: list[str] = []
