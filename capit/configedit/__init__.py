"""Safe, minimal edits of other programs' configuration files.

capit changes a few values in files people write by hand (an agent's settings.json,
config.toml, config.yaml, a ``.env``) and must leave every other byte alone: comments,
order, indentation, quoting.  Each format has a :class:`Document` that reads the text with
a real parser, changes only the values asked for, and re-parses its own output:

* ``json``, ``jsonc``, ``json5`` -- :mod:`capit.configedit.jsonc` (comment-preserving
  splicing; no maintained library keeps JSON5/JSONC comments);
* ``toml`` -- tomlkit, the round-trip TOML library (``tomlkit.parse(s).as_string() == s``);
* ``yaml`` -- ruamel.yaml's round-trip loader finds where keys and list items are, and
  :mod:`capit.configedit.yamltext` splices the change in (re-dumping the whole document
  would re-indent parts of hand-written files);
* ``dotenv`` -- ``KEY=value`` lines as python-dotenv reads them;
* ``lines`` -- a plain list of lines (``.gitignore``);
* ``raw`` -- a file that is the value (a key file);
* ``rcblock`` -- a shell-style file (``crushrc``) where capit keeps marked blocks.

A path addresses a value: mapping keys, and for YAML lists an :class:`Item` (the mapping
whose ``key`` is ``value``) or a :class:`Prefixed` string entry.  Heavy parsers are
imported only when a document of their format is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMATS = ("json", "jsonc", "json5", "toml", "yaml", "dotenv", "lines", "raw", "rcblock")
FORMAT_TITLES = {"json": "JSON", "jsonc": "JSON with comments", "json5": "JSON5",
                 "toml": "TOML", "yaml": "YAML", "dotenv": "dotenv", "lines": "text",
                 "raw": "text", "rcblock": "shell configuration"}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class ConfigSyntaxError(ValueError):
    """The existing file does not parse under its format's rules."""


class UnsupportedEdit(ValueError):
    """The change cannot be made without touching more of the file than asked."""


@dataclass(frozen=True)
class Item:
    """In a list: the mapping whose ``key`` equals ``value`` (e.g. a model named 'capit')."""

    key: str
    value: str


@dataclass(frozen=True)
class Prefixed:
    """In a list of strings: the entry that starts with ``prefix`` (``openrouter=...``)."""

    prefix: str


PathPart = Any  # str | Item | Prefixed
Path_ = tuple  # tuple[PathPart, ...]


def path_to_json(path: tuple) -> list[Any]:
    out: list[Any] = []
    for part in path:
        if isinstance(part, Item):
            out.append({"item": [part.key, part.value]})
        elif isinstance(part, Prefixed):
            out.append({"prefix": part.prefix})
        else:
            out.append(str(part))
    return out


def path_from_json(raw: list[Any]) -> tuple:
    out: list[Any] = []
    for part in raw:
        if isinstance(part, dict) and "item" in part:
            out.append(Item(str(part["item"][0]), str(part["item"][1])))
        elif isinstance(part, dict) and "prefix" in part:
            out.append(Prefixed(str(part["prefix"])))
        else:
            out.append(str(part))
    return tuple(out)


def describe_path(path: tuple) -> str:
    parts = []
    for part in path:
        if isinstance(part, Item):
            parts.append(f"[{part.key}={part.value}]")
        elif isinstance(part, Prefixed):
            parts.append(f"[{part.prefix}...]")
        else:
            parts.append(str(part))
    return ".".join(parts) if parts else "(whole file)"


def lookup(data: Any, path: tuple) -> Any:
    """The value at ``path`` in plain Python data, or MISSING."""
    node = data
    for part in path:
        if isinstance(part, Item):
            if not isinstance(node, list):
                return MISSING
            found = [e for e in node if isinstance(e, dict) and e.get(part.key) == part.value]
            if not found:
                return MISSING
            node = found[-1]
        elif isinstance(part, Prefixed):
            if not isinstance(node, list):
                return MISSING
            found = [e for e in node if isinstance(e, str) and e.startswith(part.prefix)]
            if not found:
                return MISSING
            node = found[-1]
        else:
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
    return node


def without(data: Any, paths: list[tuple]) -> Any:
    """A copy of ``data`` with the values at ``paths`` removed (to compare everything else)."""
    import copy

    data = copy.deepcopy(data)
    for path in paths:
        if not path:
            return None
        parent = lookup(data, path[:-1])
        last = path[-1]
        if isinstance(last, (Item, Prefixed)) and isinstance(parent, list):
            parent[:] = [e for e in parent if lookup([e], (last,)) is MISSING]
        elif isinstance(parent, dict):
            parent.pop(last, None)
    return data


class Document:
    """A parsed configuration file that can change single values and render itself."""

    fmt = ""

    def get(self, path: tuple) -> Any:
        """The value at ``path`` (plain Python data), or MISSING."""
        return lookup(self.data(), path)

    def data(self) -> Any:
        raise NotImplementedError

    def set(self, path: tuple, value: Any) -> None:
        raise NotImplementedError

    def delete(self, path: tuple) -> None:
        raise NotImplementedError

    def text(self) -> str:
        raise NotImplementedError

    def is_empty(self) -> bool:
        data = self.data()
        return not data


def load(fmt: str, text: str) -> Document:
    """Parse ``text`` as ``fmt``; raises ConfigSyntaxError if it does not parse."""
    if fmt in ("json", "jsonc", "json5"):
        from capit.configedit.documents import JsonDocument

        return JsonDocument(text, fmt)
    if fmt == "toml":
        from capit.configedit.documents import TomlDocument

        return TomlDocument(text)
    if fmt == "yaml":
        from capit.configedit.yamltext import YamlDocument

        return YamlDocument(text)
    if fmt == "dotenv":
        from capit.configedit.documents import DotenvDocument

        return DotenvDocument(text)
    if fmt == "lines":
        from capit.configedit.documents import LinesDocument

        return LinesDocument(text)
    if fmt == "raw":
        from capit.configedit.documents import RawDocument

        return RawDocument(text)
    if fmt == "rcblock":
        from capit.configedit.documents import RcBlockDocument

        return RcBlockDocument(text)
    raise ValueError(f"unknown format {fmt!r}")
