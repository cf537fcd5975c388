"""Logging set-up: messages on stderr, and the ``--log`` file as text or JSON lines.

Engines read the last JSON line of the ``--log`` file to show why a command
failed, so each line has the keys runc writes: ``level``, ``msg`` and ``time``.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys

from .errors import ConfigError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return json.dumps(
            {
                "level": record.levelname.lower().replace("warning", "warn"),
                "msg": record.getMessage(),
                "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )


def configure_logging(path: str, log_format: str, debug: bool) -> None:
    logger = logging.getLogger("stockade")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)

    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("stockade: %(message)s"))
    console.setLevel(logging.DEBUG if debug and not path else logging.WARNING)
    logger.addHandler(console)

    if path:
        try:
            handler = logging.FileHandler(path)
        except OSError as exc:
            raise ConfigError(
                f"cannot open log file {path}: {exc.strerror}; check --log"
            ) from None
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(message)s")
            )
        logger.addHandler(handler)
