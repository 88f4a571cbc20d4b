"""runplane: start automation processes over HTTP and track them to a result."""

__version__ = "0.1.0"
