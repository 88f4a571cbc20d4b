"""Robocorp Control Room style APIs: legacy workspace-v1 and Process API process-v1."""
