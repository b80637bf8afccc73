"""REST routers, one per area; each handler calls a service function and nothing more."""
