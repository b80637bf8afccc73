"""The gRPC side of the server: the AgentService servicer and the hub of open agent streams."""
