"""``tomllib`` for the tests, also on Python 3.10."""

from __future__ import annotations

try:
    import tomllib
except ImportError:  # Python 3.10: tomlkit, an independent TOML parser, reads it instead
    import tomlkit

    class tomllib:  # noqa: N801 - stands in for the module
        @staticmethod
        def loads(text: str) -> dict:
            return tomlkit.parse(text).unwrap()
