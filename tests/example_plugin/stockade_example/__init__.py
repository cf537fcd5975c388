"""A worked example of a third-party Stockade plugin."""
