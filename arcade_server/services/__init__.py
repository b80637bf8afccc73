"""Service functions shared by the REST routers and the gRPC servicer.

Each is a plain synchronous function taking a SQLAlchemy Core connection (run in the database
thread pool by :meth:`arcade_server.db.engine.Database.run`, one transaction per call), raising
:mod:`arcade_server.errors` for anything the caller got wrong.
"""
