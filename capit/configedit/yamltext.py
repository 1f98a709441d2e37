"""Edit hand-written YAML by splicing lines, with ruamel.yaml telling where things are.

Dumping a ruamel.yaml round-trip document again applies one indentation style to the
whole file, so a file that indents its lists in two ways comes back re-indented.  capit
only ever changes top-level scalars (``GOOSE_PROVIDER: openrouter``) and entries of
top-level block lists (a ``models:`` entry, an ``api-key:`` line), so it splices exactly
those lines: ruamel.yaml's round-trip loader gives the line and column of every key and
list entry, new lines copy the indentation of their neighbours, and the result is parsed
again.  Anything else (flow collections, multi-line scalars, nested paths) is refused
with :class:`UnsupportedEdit` rather than rewritten.
"""

from __future__ import annotations

import json
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

_PLAIN = re.compile(r"^[A-Za-z_/$][A-Za-z0-9_./:@$+=~-]*$")
_SPECIAL = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def scalar(value: Any) -> str:
    """``value`` as a one-line YAML scalar (plain when unambiguous, else double-quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        raise UnsupportedEdit("nested mappings are not written into YAML")
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _SPECIAL and not text.endswith(":"):
        return text
    return json.dumps(text, ensure_ascii=False)


def to_plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {to_plain(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _trivia(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


class YamlDocument(Document):
    fmt = "yaml"

    def __init__(self, text: str) -> None:
        self._text = text
        self._load()

    # -- parsing -------------------------------------------------------------------------

    def _load(self) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.comments import CommentedMap
        from ruamel.yaml.error import YAMLError

        try:
            root = YAML(typ="rt").load(self._text)
        except (YAMLError, ValueError) as exc:
            first = str(exc).strip().splitlines()
            raise ConfigSyntaxError(" ".join(line.strip() for line in first[:3])
                                    or "invalid YAML") from None
        if root is not None and not isinstance(root, CommentedMap):
            raise ConfigSyntaxError("the top level is not a mapping")
        if root is not None and root.fa.flow_style():
            self._flow = True
        else:
            self._flow = False
        self._root = root
        self._lines = self._text.splitlines(keepends=True)

    def data(self) -> Any:
        return {} if self._root is None else to_plain(self._root)

    # -- positions -----------------------------------------------------------------------

    def _newline(self) -> str:
        return "\r\n" if "\r\n" in self._text else "\n"

    def _last_content_line(self, first: int, limit: int) -> int:
        """The last non-comment line of the block from ``first`` up to ``limit`` (exclusive)."""
        last = first
        for i in range(first + 1, limit):
            if not _trivia(self._lines[i]):
                last = i
        return last

    def _key_span(self, key: str) -> tuple[int, int]:
        """Lines [first, last] of a top-level entry (its value included, trailing comments not)."""
        assert self._root is not None
        keys = list(self._root.keys())
        first = self._root.lc.key(key)[0]
        index = keys.index(key)
        limit = self._root.lc.key(keys[index + 1])[0] if index + 1 < len(keys) \
            else len(self._lines)
        return first, self._last_content_line(first, limit)

    def _scalar_token(self, line_no: int, col: int) -> tuple[int, int]:
        """Start and end columns of the one-line scalar at ``col``."""
        line = self._lines[line_no].rstrip("\r\n")
        if col >= len(line):
            return col, col
        ch = line[col]
        if ch in "|>":
            raise UnsupportedEdit("block scalars are not rewritten")
        if ch == '"':
            i = col + 1
            while i < len(line):
                if line[i] == "\\":
                    i += 2
                    continue
                if line[i] == '"':
                    break
                i += 1
            else:
                raise UnsupportedEdit("multi-line quoted scalars are not rewritten")
            end = i + 1
        elif ch == "'":
            i = col + 1
            while i < len(line):
                if line[i] == "'":
                    if line[i + 1:i + 2] == "'":
                        i += 2
                        continue
                    break
                i += 1
            else:
                raise UnsupportedEdit("multi-line quoted scalars are not rewritten")
            end = i + 1
        elif ch in "[{":
            raise UnsupportedEdit("flow collections are not rewritten")
        else:
            comment = re.search(r"\s#", line[col:])
            end = col + (comment.start() if comment else len(line) - col)
            end = col + len(line[col:end].rstrip())
        rest = line[end:].strip()
        if rest and not rest.startswith("#"):
            raise UnsupportedEdit("the value does not end on its line")
        return col, end

    def _replace_columns(self, line_no: int, start: int, end: int, new: str) -> None:
        line = self._lines[line_no]
        self._lines[line_no] = line[:start] + new + line[end:]
        self._commit()

    def _insert_lines(self, at: int, lines: list[str]) -> None:
        nl = self._newline()
        if at > 0 and at == len(self._lines) and not self._lines[-1].endswith("\n"):
            self._lines[-1] += nl
        self._lines[at:at] = [line + nl for line in lines]
        self._commit()

    def _delete_lines(self, first: int, last: int) -> None:
        del self._lines[first:last + 1]
        self._commit()

    def _commit(self) -> None:
        self._text = "".join(self._lines)
        self._load()

    def _colon_end(self, line_no: int, key_col: int) -> int:
        """The column just after the ``:`` that ends the key on this line."""
        line = self._lines[line_no].rstrip("\r\n")
        i = key_col
        if line[i:i + 1] in ("'", '"'):
            quote = line[i]
            i = line.index(quote, i + 1) + 1
        colon = line.index(":", i)
        return colon + 1

    # -- sequences -----------------------------------------------------------------------

    def _seq_items(self, key: str) -> list[tuple[int, int, int]]:
        """(first line, last line, dash column) of each entry of the block list at ``key``."""
        assert self._root is not None
        seq = self._root[key]
        if seq.fa.flow_style():
            raise UnsupportedEdit(f"{key} is a flow list")
        items = []
        _, entry_last = self._key_span(key)
        for i in range(len(seq)):
            line_no, col = seq.lc.item(i)
            dash = self._lines[line_no].rfind("-", 0, col)
            if dash < 0:
                raise UnsupportedEdit(f"cannot find the entries of {key}")
            limit = seq.lc.item(i + 1)[0] if i + 1 < len(seq) else entry_last + 1
            items.append((line_no, self._last_content_line(line_no, limit), dash))
        return items

    def _seq_offset(self, key: str) -> tuple[int, int]:
        """Dash column and dash-to-content distance used by the list at ``key``."""
        assert self._root is not None
        seq = self._root[key]
        line_no, col = seq.lc.item(0)
        dash = self._lines[line_no].rfind("-", 0, col)
        return dash, col - dash

    def _default_seq_indent(self) -> tuple[int, int]:
        if self._root is not None:
            for key, value in self._root.items():
                if isinstance(value, list) and value and not value.fa.flow_style():
                    return self._seq_offset(key)
        return 2, 2

    def _render_item(self, value: Any, dash: int, offset: int) -> list[str]:
        lead = " " * dash + "-" + " " * (offset - 1)
        if isinstance(value, dict):
            lines = []
            for i, (k, v) in enumerate(value.items()):
                prefix = lead if i == 0 else " " * (dash + offset)
                lines.append(f"{prefix}{scalar(k)}: {scalar(v)}")
            return lines
        return [f"{lead}{scalar(value)}"]

    def _find(self, key: str, part: Any) -> int | None:
        assert self._root is not None
        found = None
        for i, entry in enumerate(self._root[key]):
            if isinstance(part, Item) and isinstance(entry, dict) \
                    and entry.get(part.key) == part.value:
                found = i
            elif isinstance(part, Prefixed) and isinstance(entry, str) \
                    and entry.startswith(part.prefix):
                found = i
        return found

    # -- the edits -----------------------------------------------------------------------

    def _check_path(self, path: tuple) -> None:
        if self._flow:
            raise UnsupportedEdit("the file is one flow mapping")
        if not path or not isinstance(path[0], str):
            raise UnsupportedEdit("only top-level keys can be edited")
        if len(path) > 2 or (len(path) == 2 and not isinstance(path[1], (Item, Prefixed))):
            raise UnsupportedEdit("only top-level keys and list entries can be edited")

    def set(self, path: tuple, value: Any) -> None:
        self._check_path(path)
        key = path[0]
        root = self._root
        if len(path) == 1:
            if root is not None and key in root:
                current = root[key]
                if isinstance(current, (dict, list)):
                    raise UnsupportedEdit(f"{key} holds a collection")
                key_line, key_col = root.lc.key(key)
                value_line, value_col = root.lc.value(key)
                if current is None and value_line != key_line:  # "key:" with nothing after
                    end = self._colon_end(key_line, key_col)
                    self._replace_columns(key_line, end, end, " " + scalar(value))
                    return
                if value_line != key_line:
                    raise UnsupportedEdit(f"the value of {key} is not on its key's line")
                start, stop = self._scalar_token(value_line, value_col)
                self._replace_columns(value_line, start, stop, scalar(value))
                return
            if isinstance(value, list):
                dash, offset = self._default_seq_indent()
                lines = [f"{scalar(key)}:"]
                for entry in value:
                    lines += self._render_item(entry, dash, offset)
            else:
                lines = [f"{scalar(key)}: {scalar(value)}"]
            self._insert_lines(len(self._lines), lines)
            return
        part = path[1]
        if root is None or key not in root:
            dash, offset = self._default_seq_indent()
            self._insert_lines(len(self._lines),
                               [f"{scalar(key)}:"] + self._render_item(value, dash, offset))
            return
        seq = root[key]
        if seq is None:
            key_line, _ = root.lc.key(key)
            dash, offset = self._default_seq_indent()
            self._insert_lines(key_line + 1, self._render_item(value, dash, offset))
            return
        if not isinstance(seq, list) or not seq:
            raise UnsupportedEdit(f"{key} is not a list of entries")
        items = self._seq_items(key)
        _, offset = self._seq_offset(key)
        index = self._find(key, part)
        if index is None:
            first, last, dash = items[-1]
            self._insert_lines(last + 1, self._render_item(value, dash, offset))
            return
        first, last, dash = items[index]
        if isinstance(part, Prefixed) and first == last:
            line_no, col = seq.lc.item(index)
            start, stop = self._scalar_token(line_no, col)
            self._replace_columns(line_no, start, stop, scalar(value))
            return
        del self._lines[first:last + 1]
        self._lines[first:first] = [line + self._newline() for line in
                                    self._render_item(value, dash, offset)]
        self._commit()

    def delete(self, path: tuple) -> None:
        self._check_path(path)
        key = path[0]
        root = self._root
        if root is None or key not in root:
            return
        if len(path) == 1:
            first, last = self._key_span(key)
            self._delete_lines(first, last)
            return
        seq = root[key]
        if not isinstance(seq, list) or not seq:
            return
        index = self._find(key, path[1])
        if index is None:
            return
        first, last, _ = self._seq_items(key)[index]
        self._delete_lines(first, last)

    def get(self, path: tuple) -> Any:
        from capit.configedit import lookup

        if self._root is None:
            return MISSING
        return lookup(self.data(), path)

    def text(self) -> str:
        return self._text
