"""The ``ptb`` command line: :mod:`.main` registers the commands, :mod:`.common` holds what they
share (consoles, the error handler, options), one module per command or group."""

from .main import app, main

__all__ = ["app", "main"]
