"""The one error type users see: bad input, reported in one line, exit code 2."""

from __future__ import annotations

import difflib


class ConfigError(ValueError):
    """Bad user input: a study file, a component name, a CLI override.

    The CLI prints ``str(err)`` as one line and exits 2, so the message must name
    where (file and key) and what is allowed.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.message, self.source, self.key = message, source, key
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def at(self, source: str | None = None, key: str | None = None) -> ConfigError:
        """The same error, located in a file (unless it already names one) and under a key."""
        if key and self.key:
            key = f"{key}.{self.key}"
        return ConfigError(self.message, source=self.source or source, key=key or self.key)


def unknown_message(kind: str, name: object, allowed: list[str]) -> str:
    """``unknown <kind> 'x' (did you mean y?); allowed: a, b, c`` - the one wording for names."""
    close = difflib.get_close_matches(str(name), allowed, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; allowed: {', '.join(allowed)}"
