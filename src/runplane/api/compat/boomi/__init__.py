"""Boomi AtomSphere style API: ExecutionRequest, ExecutionRecord (async, query)."""
