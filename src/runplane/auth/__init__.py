"""Credentials: secret generation, hashing, and reading them off requests."""
