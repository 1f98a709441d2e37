"""Edit JSON, JSONC and JSON5 text in place, keeping every comment and every byte not edited.

No well-kept Python library edits JSON5 or JSONC without losing comments, so this module
parses the text itself (recording where each key and value starts and ends) and splices
new text in.  Three dialects:

* ``json``  -- RFC 8259 only (what ``JSON.parse`` accepts; a leading BOM is tolerated);
* ``jsonc`` -- JSON plus ``//`` and ``/* */`` comments and trailing commas (VS Code, Zed);
* ``json5`` -- the full JSON5 grammar (https://spec.json5.org): unquoted keys, single
  quotes, hex numbers, ``Infinity``/``NaN``, leading/trailing decimal points, ``+``,
  escaped line breaks in strings.

Edits are small inverses of each other: inserting a member and deleting it again gives
back the original bytes, so uninstalling restores a file exactly.  New members follow
the file's own indentation, line endings and (JSON5) key quoting.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

DIALECTS = ("json", "jsonc", "json5")
_LINE_TERMINATORS = "\n\r\u2028\u2029"
_JSON_WS = " \t\n\r"
_JSON5_WS = " \t\n\r\v\f\u00a0\u2028\u2029\ufeff"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}
_JSON5_ESCAPES = {**_ESCAPES, "'": "'", "v": "\v", "0": "\0"}


class JsonSyntaxError(ValueError):
    """The text is not valid in the dialect; ``line``/``col`` are 1-based."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(f"{message} at line {line} column {col}")
        self.line = line
        self.col = col


@dataclass
class Node:
    start: int
    end: int


@dataclass
class Scalar(Node):
    value: Any = None


@dataclass
class Arr(Node):
    items: list[Node] = field(default_factory=list)


@dataclass
class Member:
    key: str
    key_start: int
    key_end: int
    key_quoted: bool
    value: Node
    comma: int | None = None  # index of the comma right after the value, if any

    @property
    def end(self) -> int:
        return self.comma + 1 if self.comma is not None else self.value.end


@dataclass
class Obj(Node):
    members: list[Member] = field(default_factory=list)

    def find(self, key: str) -> Member | None:
        """The member named ``key``; the last one if the key repeats (it is the one in force)."""
        found = None
        for m in self.members:
            if m.key == key:
                found = m
        return found


def to_python(node: Node) -> Any:
    if isinstance(node, Obj):
        out: dict[str, Any] = {}
        for m in node.members:
            out[m.key] = to_python(m.value)
        return out
    if isinstance(node, Arr):
        return [to_python(i) for i in node.items]
    assert isinstance(node, Scalar)
    return node.value


class _Parser:
    def __init__(self, text: str, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown JSON dialect {dialect!r}")
        self.text = text
        self.dialect = dialect
        self.json5 = dialect == "json5"
        self.comments = dialect != "json"
        self.trailing_commas = dialect != "json"
        self.pos = 0

    # -- errors and positions ------------------------------------------------------------

    def error(self, message: str, pos: int | None = None) -> JsonSyntaxError:
        pos = self.pos if pos is None else pos
        before = self.text[:pos]
        line = before.count("\n") + 1
        col = pos - (before.rfind("\n") + 1) + 1
        return JsonSyntaxError(message, line, col)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- whitespace and comments ---------------------------------------------------------

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in _JSON_WS or (self.json5 and (ch in _JSON5_WS
                                                 or unicodedata.category(ch) == "Zs")):
                self.pos += 1
            elif ch == "/" and self.comments and text.startswith("//", self.pos):
                while self.pos < len(text) and text[self.pos] not in _LINE_TERMINATORS:
                    self.pos += 1
            elif ch == "/" and self.comments and text.startswith("/*", self.pos):
                close = text.find("*/", self.pos + 2)
                if close < 0:
                    raise self.error("unterminated comment")
                self.pos = close + 2
            else:
                return

    # -- values --------------------------------------------------------------------------

    def parse(self) -> Node:
        if self.text.startswith("\ufeff"):
            self.pos = 1
        self.skip()
        if self.pos >= len(self.text):
            raise self.error("empty document")
        node = self.value(0)
        self.skip()
        if self.pos != len(self.text):
            raise self.error("unexpected text after the top-level value")
        return node

    def value(self, depth: int) -> Node:
        if depth > 512:
            raise self.error("nesting too deep")
        ch = self.peek()
        if ch == "{":
            return self.obj(depth)
        if ch == "[":
            return self.arr(depth)
        if ch == '"' or (ch == "'" and self.json5):
            start = self.pos
            value = self.string()
            return Scalar(start, self.pos, value)
        return self.literal()

    def obj(self, depth: int) -> Obj:
        start = self.pos
        self.pos += 1
        node = Obj(start, start)
        self.skip()
        while True:
            if self.peek() == "}":
                if node.members and node.members[-1].comma is not None \
                        and not self.trailing_commas:
                    raise self.error("trailing comma", node.members[-1].comma)
                self.pos += 1
                node.end = self.pos
                return node
            if node.members and node.members[-1].comma is None:
                raise self.error("expected ',' or '}'")
            key_start = self.pos
            ch = self.peek()
            if ch == '"' or (ch == "'" and self.json5):
                key = self.string()
                quoted = True
            elif self.json5 and (ch.isalpha() or ch in "$_\\"):
                key = self.identifier()
                quoted = False
            else:
                raise self.error("expected a key" if ch else "unterminated object")
            key_end = self.pos
            self.skip()
            if self.peek() != ":":
                raise self.error("expected ':'")
            self.pos += 1
            self.skip()
            value = self.value(depth + 1)
            member = Member(key, key_start, key_end, quoted, value)
            node.members.append(member)
            self.skip()
            if self.peek() == ",":
                member.comma = self.pos
                self.pos += 1
                self.skip()

    def arr(self, depth: int) -> Arr:
        start = self.pos
        self.pos += 1
        node = Arr(start, start)
        self.skip()
        comma_after_last: int | None = None
        while True:
            if self.peek() == "]":
                if comma_after_last is not None and not self.trailing_commas:
                    raise self.error("trailing comma", comma_after_last)
                self.pos += 1
                node.end = self.pos
                return node
            if node.items and comma_after_last is None:
                raise self.error("expected ',' or ']'")
            if not self.peek():
                raise self.error("unterminated array")
            node.items.append(self.value(depth + 1))
            comma_after_last = None
            self.skip()
            if self.peek() == ",":
                comma_after_last = self.pos
                self.pos += 1
                self.skip()

    def identifier(self) -> str:
        text = self.text
        out = []
        first = True
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                if not text.startswith("\\u", self.pos):
                    raise self.error("bad escape in key")
                ch = self.hex_escape(self.pos + 2, 4)
                self.pos += 6
            elif ch.isalpha() or ch in "$_" or (not first and (
                    ch.isdigit() or ch in "\u200c\u200d"
                    or unicodedata.category(ch) in ("Mn", "Mc", "Nd", "Pc"))):
                self.pos += 1
            else:
                break
            out.append(ch)
            first = False
        if not out:
            raise self.error("expected a key")
        return "".join(out)

    def hex_escape(self, at: int, n: int) -> str:
        digits = self.text[at:at + n]
        if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.error("bad escape", at)
        return chr(int(digits, 16))

    def string(self) -> str:
        text = self.text
        quote = text[self.pos]
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated string")
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                break
            if ch == "\\":
                self.pos += 1
                esc = self.peek()
                if not esc:
                    raise self.error("unterminated string")
                if esc == "u":
                    code = ord(self.hex_escape(self.pos + 1, 4))
                    self.pos += 5
                    if 0xD800 <= code < 0xDC00 and text.startswith("\\u", self.pos):
                        low = ord(self.hex_escape(self.pos + 2, 4))
                        if 0xDC00 <= low < 0xE000:
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            self.pos += 6
                    out.append(chr(code))
                    continue
                if not self.json5:
                    if esc not in _ESCAPES:
                        raise self.error("bad escape")
                    out.append(_ESCAPES[esc])
                    self.pos += 1
                    continue
                if esc == "x":
                    out.append(self.hex_escape(self.pos + 1, 2))
                    self.pos += 3
                elif esc in _LINE_TERMINATORS:  # a line continuation: no character
                    self.pos += 2 if text.startswith("\r\n", self.pos) else 1
                elif esc == "0" and self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                    raise self.error("octal escapes are not allowed")
                elif esc in "123456789":
                    raise self.error("bad escape")
                else:
                    out.append(_JSON5_ESCAPES.get(esc, esc))
                    self.pos += 1
                continue
            if ch in "\n\r" or (not self.json5 and ord(ch) < 0x20):
                raise self.error("line break or control character in a string")
            out.append(ch)
            self.pos += 1
        return "".join(out)

    def literal(self) -> Scalar:
        start = self.pos
        text = self.text
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, self.pos):
                self.pos += len(word)
                self._end_of_word(start)
                return Scalar(start, self.pos, value)
        return self.number()

    def _end_of_word(self, start: int) -> None:
        ch = self.peek()
        if ch and (ch.isalnum() or ch in "$_"):
            raise self.error("unexpected text", start)

    def number(self) -> Scalar:
        text = self.text
        start = self.pos
        sign = ""
        if self.peek() in ("-", "+"):
            if self.peek() == "+" and not self.json5:
                raise self.error("unexpected '+'")
            sign = self.peek()
            self.pos += 1
        if self.json5:
            for word, value in (("Infinity", float("inf")), ("NaN", float("nan"))):
                if text.startswith(word, self.pos):
                    self.pos += len(word)
                    self._end_of_word(start)
                    return Scalar(start, self.pos, -value if sign == "-" else value)
            if text.startswith(("0x", "0X"), self.pos):
                self.pos += 2
                digits_at = self.pos
                while self.peek() and self.peek() in "0123456789abcdefABCDEF":
                    self.pos += 1
                if self.pos == digits_at:
                    raise self.error("bad hexadecimal number", start)
                self._end_of_word(start)
                value = int(text[digits_at:self.pos], 16)
                return Scalar(start, self.pos, -value if sign == "-" else value)
        int_at = self.pos
        while self.peek().isdigit() and self.peek().isascii():
            self.pos += 1
        int_digits = text[int_at:self.pos]
        frac_digits = ""
        if self.peek() == ".":
            self.pos += 1
            frac_at = self.pos
            while self.peek().isdigit() and self.peek().isascii():
                self.pos += 1
            frac_digits = text[frac_at:self.pos]
            if not self.json5 and not frac_digits:
                raise self.error("bad number", start)
        if not int_digits and not (self.json5 and frac_digits):
            raise self.error("unexpected character" if self.peek() or start < len(text)
                             else "unexpected end", start)
        if not self.json5 and len(int_digits) > 1 and int_digits[0] == "0":
            raise self.error("leading zero in a number", start)
        if self.peek() in ("e", "E"):
            self.pos += 1
            if self.peek() in ("+", "-"):
                self.pos += 1
            exp_at = self.pos
            while self.peek().isdigit() and self.peek().isascii():
                self.pos += 1
            if self.pos == exp_at:
                raise self.error("bad exponent", start)
        self._end_of_word(start)
        raw = text[start:self.pos]
        if "." in raw or "e" in raw or "E" in raw:
            value: Any = float(raw.replace("+", "", 1) if raw.startswith("+") else raw)
        else:
            value = int(raw)
        return Scalar(start, self.pos, value)


def parse(text: str, dialect: str = "json") -> Node:
    """The syntax tree of ``text``; raises :class:`JsonSyntaxError`."""
    return _Parser(text, dialect).parse()


def loads(text: str, dialect: str = "json") -> Any:
    return to_python(parse(text, dialect))


_MISSING = object()


class JsonText:
    """A JSON/JSONC/JSON5 document whose edits touch only the bytes they must."""

    def __init__(self, text: str, dialect: str = "json") -> None:
        self.dialect = dialect
        self.text = text
        self._tree = parse(text, dialect)
        if not isinstance(self._tree, Obj):
            raise JsonSyntaxError("the top-level value is not an object", 1, 1)
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.unit = self._indent_unit()

    # -- reading -------------------------------------------------------------------------

    @property
    def tree(self) -> Obj:
        assert isinstance(self._tree, Obj)
        return self._tree

    def _walk(self, path: tuple[str, ...]) -> Node | None:
        node: Node = self.tree
        for key in path:
            if not isinstance(node, Obj):
                return None
            member = node.find(key)
            if member is None:
                return None
            node = member.value
        return node

    def get(self, path: tuple[str, ...], default: Any = _MISSING) -> Any:
        node = self._walk(path)
        if node is None:
            if default is _MISSING:
                raise KeyError(path)
            return default
        return to_python(node)

    def has(self, path: tuple[str, ...]) -> bool:
        return self._walk(path) is not None

    def data(self) -> dict[str, Any]:
        return to_python(self.tree)

    # -- layout helpers ------------------------------------------------------------------

    def _line_start(self, pos: int) -> int:
        return self.text.rfind("\n", 0, pos) + 1

    def _line_end(self, pos: int) -> int:
        """Index of the line's newline sequence (its ``\\r`` if CRLF), or the text's end."""
        nl = self.text.find("\n", pos)
        if nl < 0:
            return len(self.text)
        return nl - 1 if nl > 0 and self.text[nl - 1] == "\r" and nl - 1 >= pos else nl

    def _after_newline(self, pos: int) -> int:
        """The start of the next line after the line holding ``pos``."""
        nl = self.text.find("\n", pos)
        return len(self.text) if nl < 0 else nl + 1

    def _indent_of(self, pos: int) -> str:
        start = self._line_start(pos)
        line = self.text[start:pos]
        return line[:len(line) - len(line.lstrip(" \t"))]

    def _alone_before(self, pos: int) -> bool:
        return self.text[self._line_start(pos):pos].strip(" \t") == ""

    def _trivia_to_line_end(self, pos: int) -> int:
        """Skip spaces, tabs and comments on this line; where the skipping stopped."""
        text = self.text
        end = self._line_end(pos)
        while pos < end:
            ch = text[pos]
            if ch in " \t":
                pos += 1
            elif text.startswith("//", pos) and self.dialect != "json":
                return end
            elif text.startswith("/*", pos) and self.dialect != "json":
                close = text.find("*/", pos + 2)
                if close < 0 or close + 2 > end:
                    return pos
                pos = close + 2
            else:
                return pos
        return pos

    def _indent_unit(self) -> str:
        def visit(obj: Obj) -> str | None:
            base = self._indent_of(obj.start)
            for m in obj.members:
                if self._alone_before(m.key_start) and self._line_start(m.key_start) > obj.start:
                    ind = self._indent_of(m.key_start)
                    if ind.startswith(base) and len(ind) > len(base):
                        return ind[len(base):]
                if isinstance(m.value, Obj):
                    found = visit(m.value)
                    if found:
                        return found
            return None

        return visit(self.tree) or "  "

    # -- rendering -----------------------------------------------------------------------

    def _bare_keys(self, siblings: list[Member]) -> bool:
        """JSON5 files whose keys are all unquoted get unquoted keys."""
        return self.dialect == "json5" and bool(siblings) and not any(
            m.key_quoted for m in siblings)

    def _key(self, key: str, bare: bool) -> str:
        if bare and key.isidentifier() and key.isascii():
            return key
        return json.dumps(key, ensure_ascii=False)

    def render(self, value: Any, indent: str, *, compact: bool = False,
               bare: bool = False) -> str:
        """``value`` as JSON text for a member whose line is indented by ``indent``."""
        if isinstance(value, dict):
            if not value:
                return "{}"
            if compact:
                return "{" + ", ".join(
                    f"{self._key(k, bare)}: {self.render(v, indent, compact=True, bare=bare)}"
                    for k, v in value.items()) + "}"
            inner = indent + self.unit
            parts = [f"{inner}{self._key(k, bare)}: {self.render(v, inner, bare=bare)}"
                     for k, v in value.items()]
            nl = self.newline
            return "{" + nl + ("," + nl).join(parts) + nl + indent + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.render(v, indent, compact=True, bare=bare)
                                   for v in value) + "]"
        if isinstance(value, float) and value != value:
            raise ValueError("NaN cannot be written")
        return json.dumps(value, ensure_ascii=False)

    # -- editing -------------------------------------------------------------------------

    def _splice(self, edits: list[tuple[int, int, str]]) -> None:
        text = self.text
        # right to left; at one position the earlier edit's text ends up first
        order = sorted(range(len(edits)), key=lambda i: (edits[i][0], edits[i][1], i),
                       reverse=True)
        for i in order:
            start, end, new = edits[i]
            text = text[:start] + new + text[end:]
        self._replace_text(text)

    def _replace_text(self, text: str) -> None:
        tree = parse(text, self.dialect)  # every edit must leave a valid document
        if not isinstance(tree, Obj):
            raise AssertionError("edit produced a non-object document")
        self.text = text
        self._tree = tree

    def set(self, path: tuple[str, ...], value: Any) -> None:
        """Set the value at ``path``, creating missing objects on the way."""
        if not path:
            raise ValueError("empty path")
        node: Node = self.tree
        for i, key in enumerate(path):
            if not isinstance(node, Obj):
                raise TypeError(f"{'.'.join(path[:i])} is not an object")
            member = node.find(key)
            if member is None:
                rest: Any = value
                for later in reversed(path[i + 1:]):
                    rest = {later: rest}
                self._insert(node, key, rest)
                return
            if i == len(path) - 1:
                indent = self._indent_of(member.key_start)
                compact = not isinstance(value, dict) or not self._alone_before(
                    member.key_start)
                self._splice([(member.value.start, member.value.end,
                               self.render(value, indent, compact=compact,
                                           bare=self._bare_keys(node.members)))])
                return
            node = member.value

    def _insert(self, obj: Obj, key: str, value: Any) -> None:
        nl = self.newline
        bare = self._bare_keys(obj.members) or (not obj.members and self._bare_keys(
            self.tree.members))
        if not obj.members:
            inner = self.text[obj.start + 1:obj.end - 1]
            base = self._indent_of(obj.start)
            member = f"{self._key(key, bare)}: {self.render(value, base + self.unit, bare=bare)}"
            if inner.strip(_JSON5_WS) == "":
                new = "{" + nl + base + self.unit + member + nl + base + "}"
                self._splice([(obj.start, obj.end, new)])
                return
            close = obj.end - 1  # only comments inside: add the member before the '}'
            if self._alone_before(close):
                at = self._line_start(close)
                self._splice([(at, at, base + self.unit + member + nl)])
            else:
                self._splice([(close, close, nl + base + self.unit + member + nl + base)])
            return
        last = obj.members[-1]
        own_line = (self._alone_before(last.key_start)
                    and self._line_start(last.key_start) > obj.start)
        indent = self._indent_of(last.key_start)
        rendered = self.render(value, indent, compact=not own_line, bare=bare)
        member = f"{self._key(key, bare)}: {rendered}"
        if own_line:
            edits: list[tuple[int, int, str]] = []
            if last.comma is not None:  # the file keeps trailing commas: so does the new one
                anchor = last.comma + 1
                member += ","
            else:
                anchor = last.value.end
                edits.append((anchor, anchor, ","))
            stop = self._trivia_to_line_end(anchor)
            at = stop if stop == self._line_end(anchor) else anchor
            edits.append((at, at, nl + indent + member))
            self._splice(edits)
        elif last.comma is not None:
            self._splice([(last.comma + 1, last.comma + 1, " " + member + ",")])
        else:
            self._splice([(last.value.end, last.value.end, ", " + member)])

    def delete(self, path: tuple[str, ...]) -> bool:
        """Remove the member at ``path``; False if it was not there."""
        if not path:
            raise ValueError("empty path")
        parent = self._walk(path[:-1])
        if not isinstance(parent, Obj):
            return False
        member = parent.find(path[-1])
        if member is None:
            return False
        index = parent.members.index(member)
        members = parent.members
        edits: list[tuple[int, int, str]] = []
        end = member.end
        own_line = (self._alone_before(member.key_start)
                    and self._line_start(member.key_start) > parent.start
                    and self._trivia_to_line_end(end) == self._line_end(end))
        if own_line:
            start = self._line_start(member.key_start)
            stop = self._after_newline(end)
            if stop > parent.end - 1:  # the closing brace shares the member's last line
                stop = self._line_end(end)
            edits.append((start, stop, ""))
            if index == len(members) - 1 and member.comma is None and index > 0:
                prev = members[index - 1]
                assert prev.comma is not None
                edits.append((prev.comma, prev.comma + 1, ""))
        elif index < len(members) - 1:
            edits.append((member.key_start, members[index + 1].key_start, ""))
        elif index > 0:
            prev = members[index - 1]
            if member.comma is not None:
                assert prev.comma is not None
                edits.append((prev.comma + 1, end, ""))
            else:
                edits.append((prev.value.end, end, ""))
        else:
            edits.append((member.key_start, end, ""))
        self._splice(edits)
        # an object left with nothing but whitespace inside becomes "{}"
        parent_after = self._walk(path[:-1])
        if isinstance(parent_after, Obj) and not parent_after.members:
            inner = self.text[parent_after.start + 1:parent_after.end - 1]
            if inner and inner.strip(_JSON5_WS) == "":
                self._splice([(parent_after.start, parent_after.end, "{}")])
        return True
