"""Stockade's built-in plugins, each a package registered through an entry point."""
