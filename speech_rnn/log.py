"""The package's one logger, ``speech_rnn``, and the console output the CLI sets up.

Library code logs and never prints (results are returned); a program using the package
decides where log lines go, as with any library. The ``speech-rnn`` command installs
:func:`configure_console` once: informational lines to stdout, warnings and errors to
stderr, debug lines too with ``-v``; ``--quiet`` turns progress bars off.
"""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger("speech_rnn")


class _LevelPrefix(logging.Formatter):
    """``warning: message``, as the command's other one-line messages read."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


class _StreamOfNow(logging.StreamHandler):
    """A handler that writes to the stream ``sys.stdout``/``sys.stderr`` is *now*, so that
    redirected or captured streams (pytest's capsys, contextlib.redirect_stdout) work."""

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    @property
    def stream(self):
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, _value):
        pass


def configure_console(verbosity: int = 0) -> None:
    """Log to the console: ``verbosity`` -1 warnings only, 0 information, 1 debug. Calling
    it again replaces the handlers it installed before."""
    for handler in [h for h in logger.handlers if getattr(h, "_speech_rnn_console", False)]:
        logger.removeHandler(handler)
    out, err = _StreamOfNow("stdout"), _StreamOfNow("stderr")
    out.addFilter(_BelowWarning())
    err.setLevel(logging.WARNING)
    err.setFormatter(_LevelPrefix("%(message)s"))
    for handler in (out, err):
        handler._speech_rnn_console = True
        logger.addHandler(handler)
    logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    logger.propagate = False


def add_log_flags(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` (debug lines too) and ``-q/--quiet`` (no progress bars: one line per
    event, for logs and CI) on a command's parser; they go after the command's name."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="debug lines too")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars (log lines only)"
    )
