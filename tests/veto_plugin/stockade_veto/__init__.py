"""A test plugin that decides mediated calls by path: no open of a 'secret' file."""

import errno

from stockade.hookspecs import hookimpl

OPEN_CALLS = {"open": 0, "openat": 1, "openat2": 1, "creat": 0}


@hookimpl
def stockade_syscall(container, call):
    index = OPEN_CALLS.get(call.name)
    if index is None:
        return None
    path = call.decoded()[index]
    if path is None or "secret" in path:
        return errno.EACCES
    return None
