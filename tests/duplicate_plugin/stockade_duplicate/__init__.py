"""A deliberately broken plugin: it declares the network mode "none" a second time."""

from typing import ClassVar

from stockade.hookspecs import hookimpl


class SecondNone:
    name = "none"
    kind: ClassVar[str] = "network"
    description = "a second provider of the name none"


@hookimpl
def stockade_providers():
    return [SecondNone()]
