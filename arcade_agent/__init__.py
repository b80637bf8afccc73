"""Arcade's agent: keeps a gRPC stream to the server, reconciles desired state into a
:class:`arcade_core.PluginHost`, collects metrics and runs jobs."""
