"""Arcade's server: plugin registry, per-agent desired state, REST API and gRPC service.

Importing this package is cheap: FastAPI, SQLAlchemy and grpc are imported by the modules
that need them, so the ``arcade`` CLI starts fast on machines without the server extra.
"""
