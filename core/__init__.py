"""Stockade: an OCI container runtime that runs each container in a sandbox."""

__version__ = "0.1.0"
