"""The "gofer" file-access mode: a separate process owns the container's files.

NOTE: not available yet. The package exists so that the plugin layout is
complete; it registers no provider, so ``--file-access=gofer`` is rejected as
an unknown mode that lists the available ones.
"""
