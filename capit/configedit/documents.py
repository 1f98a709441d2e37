"""Documents for JSON/JSONC/JSON5, TOML, dotenv, plain lines and whole-file values."""

from __future__ import annotations

import re
from typing import Any

from capit.configedit import (
    MISSING,
    ConfigSyntaxError,
    Document,
    Item,
    Prefixed,
    UnsupportedEdit,
)


def _plain_keys(path: tuple) -> tuple[str, ...]:
    for part in path:
        if isinstance(part, (Item, Prefixed)):
            raise UnsupportedEdit("list entries can only be edited in YAML files")
    return tuple(str(p) for p in path)


class JsonDocument(Document):
    def __init__(self, text: str, dialect: str = "json") -> None:
        from capit.configedit.jsonc import JsonSyntaxError, JsonText

        self.fmt = dialect
        try:
            self._doc = JsonText(text if text.strip() else "{}\n", dialect)
        except JsonSyntaxError as exc:
            raise ConfigSyntaxError(str(exc)) from None

    def data(self) -> Any:
        return self._doc.data()

    def set(self, path: tuple, value: Any) -> None:
        try:
            self._doc.set(_plain_keys(path), value)
        except TypeError as exc:
            raise UnsupportedEdit(str(exc)) from None

    def delete(self, path: tuple) -> None:
        self._doc.delete(_plain_keys(path))

    def text(self) -> str:
        return self._doc.text


class TomlDocument(Document):
    """TOML through tomlkit, which keeps comments and layout of everything it did not change.

    Values in existing tables are set with tomlkit.  A table that does not exist yet is
    appended at the end of the file (tomlkit would put it after the trailing comments of
    its sibling, which belong to the next table), and a table capit removes is cut out as
    the lines it occupies, so adding and removing one gives the original text back.
    """

    fmt = "toml"

    def __init__(self, text: str) -> None:
        self._parse(text)
        if self._doc.as_string() != text:
            raise UnsupportedEdit("tomlkit cannot reproduce this file exactly")

    def _parse(self, text: str) -> None:
        import tomlkit
        from tomlkit.exceptions import TOMLKitError

        try:
            import tomllib
        except ImportError:  # Python 3.10: tomlkit alone judges the syntax
            tomllib = None  # type: ignore[assignment]
        try:
            if tomllib is not None:
                tomllib.loads(text)
            self._doc = tomlkit.parse(text)
        except (TOMLKitError, ValueError) as exc:
            raise ConfigSyntaxError(str(exc).splitlines()[0] if str(exc) else "invalid TOML") \
                from None
        self._text = text

    def data(self) -> Any:
        return self._doc.unwrap()

    def _container(self, keys: tuple[str, ...]) -> Any:
        node: Any = self._doc
        for key in keys:
            if not hasattr(node, "keys") or key not in node:
                return None
            node = node[key]
        return node if hasattr(node, "keys") else None

    def set(self, path: tuple, value: Any) -> None:
        import tomlkit

        keys = _plain_keys(path)
        parent = self._container(keys[:-1])
        if parent is not None:
            parent[keys[-1]] = value
            self._text = self._doc.as_string()
            return
        for depth in range(1, len(keys) - 1):
            node = self._doc
            for key in keys[:depth]:
                node = node.get(key) if hasattr(node, "get") else None
            if node is not None and not hasattr(node, "keys"):
                raise UnsupportedEdit(f"{'.'.join(keys[:depth])} is not a table")
        nested: Any = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        block = tomlkit.dumps(nested)
        text = self._text
        if text and not text.endswith("\n"):
            text += "\n"
        if text.strip() and not text.endswith("\n\n"):
            text += "\n"
        self._parse(text + block)

    def _header_keys(self, line: str) -> tuple[str, ...] | None:
        import tomlkit
        from tomlkit.exceptions import TOMLKitError

        stripped = line.strip()
        if not stripped.startswith("[") or stripped.startswith("[["):
            return None
        try:
            node: Any = tomlkit.parse(stripped).unwrap()
        except (TOMLKitError, ValueError):
            return None
        keys: list[str] = []
        while isinstance(node, dict) and len(node) == 1:
            key = next(iter(node))
            keys.append(key)
            node = node[key]
        return tuple(keys)

    def delete(self, path: tuple) -> None:
        keys = _plain_keys(path)
        parent = self._container(keys[:-1])
        if parent is None or keys[-1] not in parent:
            return
        if hasattr(parent[keys[-1]], "keys") and self._cut_table(keys):
            return
        del parent[keys[-1]]
        self._text = self._doc.as_string()

    def _cut_table(self, keys: tuple[str, ...]) -> bool:
        """Remove the lines of table ``keys`` (and its sub-tables) if it has a header."""
        lines = self._text.splitlines(keepends=True)
        start = None
        for i, line in enumerate(lines):
            if self._header_keys(line) == keys:
                start = i
                break
        if start is None:
            return False
        stop = len(lines)
        for i in range(start + 1, len(lines)):
            found = self._header_keys(lines[i])
            if found is None and not lines[i].lstrip().startswith("[["):
                continue
            if found is not None and found[:len(keys)] == keys:
                continue
            stop = i
            break
        if stop < len(lines):  # trailing comments and blank lines belong to what follows
            while stop - 1 > start and (not lines[stop - 1].strip()
                                        or lines[stop - 1].lstrip().startswith("#")):
                stop -= 1
            del lines[start:stop]
        else:
            del lines[start:]
            if len(lines) >= 2 and not lines[-1].strip() and lines[-2].endswith("\n"):
                del lines[-1]  # the blank line that separated it
        self._parse("".join(lines))
        return True

    def text(self) -> str:
        return self._text


# -- dotenv ---------------------------------------------------------------------------------

_ASSIGN = re.compile(r"(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)"
                     r"(?P<eq>[ \t]*=[ \t]*)")
_SAFE_UNQUOTED = re.compile(r"^[A-Za-z0-9_./:@+,~=%-]+$")
_DQ_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
               "r": "\r", "t": "\t", "v": "\v"}


class _Assignment:
    def __init__(self, key: str, start: int, value_start: int, end: int, value: str,
                 quote: str) -> None:
        self.key = key
        self.start = start  # first character of the line
        self.value_start = value_start
        self.end = end  # end of the value token (a closing quote included)
        self.value = value
        self.quote = quote


def _decode_double(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _DQ_ESCAPES.get(m.group(1), m.group(0)), raw,
                  flags=re.S)


def _decode_single(raw: str) -> str:
    return re.sub(r"\\([\\'])", lambda m: m.group(1), raw)


class DotenvDocument(Document):
    """``KEY=value`` lines read the way python-dotenv reads them (the last one wins)."""

    fmt = "dotenv"

    def __init__(self, text: str) -> None:
        self._text = text
        self._assignments = self._parse(text)

    @staticmethod
    def _parse(text: str) -> list[_Assignment]:
        found: list[_Assignment] = []
        pos = 0
        while pos < len(text):
            line_end = text.find("\n", pos)
            line_end = len(text) if line_end < 0 else line_end
            match = _ASSIGN.match(text, pos, line_end)
            if match is None:
                pos = line_end + 1
                continue
            vstart = match.end()
            quote = text[vstart] if vstart < len(text) and text[vstart] in "'\"" else ""
            if quote:
                pattern = r"'((?:\\'|[^'])*)'" if quote == "'" else r'"((?:\\"|[^"])*)"'
                q = re.compile(pattern, re.S).match(text, vstart)
                if q is None:
                    line = text.count("\n", 0, pos) + 1
                    raise ConfigSyntaxError(f"unterminated quoted value at line {line}")
                raw = q.group(1)
                value = _decode_single(raw) if quote == "'" else _decode_double(raw)
                end = q.end()
            else:
                raw_line = text[vstart:line_end].rstrip("\r")
                value = re.sub(r"\s+#.*", "", raw_line).rstrip()
                if raw_line.startswith("#"):
                    value = ""
                end = vstart + len(value)
            found.append(_Assignment(match.group("key"), pos, vstart, end, value, quote))
            next_nl = text.find("\n", end)
            pos = len(text) if next_nl < 0 else next_nl + 1
        return found

    def _last(self, key: str) -> _Assignment | None:
        hits = [a for a in self._assignments if a.key == key]
        return hits[-1] if hits else None

    def data(self) -> Any:
        return {a.key: a.value for a in self._assignments}

    @staticmethod
    def _render(value: str, quote: str) -> str:
        if quote == "'" and "'" not in value and "\\" not in value and "\n" not in value:
            return f"'{value}'"
        if quote == "" and _SAFE_UNQUOTED.match(value):
            return value
        escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                   .replace("\r", "\\r"))
        return f'"{escaped}"'

    def set(self, path: tuple, value: Any) -> None:
        (key,) = _plain_keys(path)
        value = str(value)
        found = self._last(key)
        if found is not None:
            new = self._render(value, found.quote)
            self._text = self._text[:found.value_start] + new + self._text[found.end:]
        else:
            text = self._text
            if text and not text.endswith("\n"):
                text += "\r\n" if "\r\n" in text else "\n"
            nl = "\r\n" if "\r\n" in text else "\n"
            self._text = f"{text}{key}={self._render(value, '')}{nl}"
        self._assignments = self._parse(self._text)

    def delete(self, path: tuple) -> None:
        (key,) = _plain_keys(path)
        found = self._last(key)
        if found is None:
            return
        next_nl = self._text.find("\n", found.end)
        stop = len(self._text) if next_nl < 0 else next_nl + 1
        self._text = self._text[:found.start] + self._text[stop:]
        self._assignments = self._parse(self._text)

    def text(self) -> str:
        return self._text


class LinesDocument(Document):
    """A plain list of lines (``.gitignore``): a path is one line, present or not."""

    fmt = "lines"

    def __init__(self, text: str) -> None:
        self._text = text

    def _lines(self) -> list[str]:
        return [line.rstrip("\r") for line in self._text.split("\n")]

    def data(self) -> Any:
        return {line.strip(): True for line in self._lines() if line.strip()}

    def set(self, path: tuple, value: Any) -> None:
        (line,) = _plain_keys(path)
        if line in self.data():
            return
        text = self._text
        if text and not text.endswith("\n"):
            text += "\n"
        self._text = f"{text}{line}\n"

    def delete(self, path: tuple) -> None:
        (line,) = _plain_keys(path)
        lines = self._text.split("\n")
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].rstrip("\r").strip() == line:
                del lines[i]
                break
        self._text = "\n".join(lines)

    def text(self) -> str:
        return self._text


class RawDocument(Document):
    """A file whose whole content is the value (e.g. a key file); the path is ``()``."""

    fmt = "raw"

    def __init__(self, text: str) -> None:
        self._text = text

    def data(self) -> Any:
        return self._text.strip() or MISSING

    def get(self, path: tuple) -> Any:
        if path:
            return MISSING
        return self.data()

    def set(self, path: tuple, value: Any) -> None:
        if path:
            raise UnsupportedEdit("a raw file has no keys")
        self._text = f"{value}\n"

    def delete(self, path: tuple) -> None:
        self._text = ""

    def is_empty(self) -> bool:
        return not self._text.strip()

    def text(self) -> str:
        return self._text


class RcBlockDocument(Document):
    """A shell-style file (``crushrc``) with capit's blocks between marker comments.

    The path is ``(name,)``; the value is the block's body.  Lines outside capit's blocks
    are never touched.
    """

    fmt = "rcblock"

    def __init__(self, text: str) -> None:
        self._text = text
        self._blocks()  # refuse unbalanced markers early

    @staticmethod
    def _begin(name: str) -> str:
        return f"# >>> capit {name} >>>"

    @staticmethod
    def _end(name: str) -> str:
        return f"# <<< capit {name} <<<"

    def _blocks(self) -> dict[str, tuple[int, int, str]]:
        """name -> (start offset, end offset after the end marker's newline, body)."""
        found: dict[str, tuple[int, int, str]] = {}
        pos = 0
        lines = self._text.splitlines(keepends=True)
        open_name: str | None = None
        open_at = 0
        body: list[str] = []
        for line in lines:
            stripped = line.strip()
            begin = re.fullmatch(r"# >>> capit (\S+) >>>", stripped)
            end = re.fullmatch(r"# <<< capit (\S+) <<<", stripped)
            if begin and open_name is None:
                open_name, open_at, body = begin.group(1), pos, []
            elif end and open_name is not None:
                if end.group(1) != open_name:
                    raise ConfigSyntaxError(f"capit block {open_name!r} ends as {end.group(1)!r}")
                found[open_name] = (open_at, pos + len(line), "".join(body).rstrip("\r\n"))
                open_name = None
            elif begin or end:
                raise ConfigSyntaxError("capit's block markers are unbalanced")
            elif open_name is not None:
                body.append(line)
            pos += len(line)
        if open_name is not None:
            raise ConfigSyntaxError(f"capit block {open_name!r} is not closed")
        return found

    def data(self) -> Any:
        blocks = self._blocks()
        outside = self._text
        for start, end, _ in sorted(blocks.values(), reverse=True):
            outside = outside[:start] + outside[end:]
        out: dict[str, Any] = {"": outside.rstrip("\r\n")}
        out.update({name: body for name, (_, _, body) in blocks.items()})
        return out

    def get(self, path: tuple) -> Any:
        (name,) = _plain_keys(path)
        block = self._blocks().get(name)
        return MISSING if block is None else block[2]

    def set(self, path: tuple, value: Any) -> None:
        (name,) = _plain_keys(path)
        nl = "\r\n" if "\r\n" in self._text else "\n"
        block = self._begin(name) + nl + str(value).rstrip("\n") + nl + self._end(name) + nl
        found = self._blocks().get(name)
        if found is not None:
            self._text = self._text[:found[0]] + block + self._text[found[1]:]
            return
        text = self._text
        if text and not text.endswith("\n"):
            text += nl
        self._text = text + block

    def delete(self, path: tuple) -> None:
        (name,) = _plain_keys(path)
        found = self._blocks().get(name)
        if found is not None:
            self._text = self._text[:found[0]] + self._text[found[1]:]

    def is_empty(self) -> bool:
        return not self._text.strip()

    def text(self) -> str:
        return self._text
