"""The REST API (FastAPI): ``create_app`` builds it; routers stay thin over the services."""
