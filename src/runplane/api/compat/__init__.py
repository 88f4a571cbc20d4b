"""Vendor-compatible routers: thin translations onto the native services."""
