"""Planned changes to other programs' files (and keyring entries): show, ask, apply, undo.

A change knows the bytes it expects to find, so nothing is written over a file that
changed meanwhile; it writes atomically (temp file, fsync, rename) and keeps the previous
version as ``<file>.capit.bak`` (0600).  :func:`apply_all` applies a list of changes all
or nothing, and returns a function that undoes them again (used when a later step of the
same run fails).  Diffs shown to the person have keys masked.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from capit import ui
from capit.errors import CapitError, ExitCode
from capit.fsutil import read_regular
from capit.secret import mask

MAX_CONFIG_BYTES = 8 << 20
BACKUP_SUFFIX = ".capit.bak"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_KEYLIKE = re.compile(r"(?<![A-Za-z0-9_\-])(sk-[A-Za-z0-9_\-]{12,}|"
                      r"(?=[A-Za-z_\-]*[0-9])(?=[0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,})")


def mask_text(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with the given secrets, and anything that looks like a key, masked."""
    for value in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(value, mask(value))
    return _KEYLIKE.sub(lambda m: mask(m.group(0)), text)


def read_file(path: Path) -> tuple[bytes | None, int | None]:
    """Contents and permission bits of a regular file; (None, None) if it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise CapitError(f"cannot read {path}: {exc.strerror or exc}", ExitCode.STATE) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CapitError(f"{path} is not a regular file", ExitCode.STATE)
        data = read_regular(fd, st, MAX_CONFIG_BYTES,
                            f"{path} is too large to be a configuration file")
        return data, stat.S_IMODE(st.st_mode)
    except OSError as exc:
        raise CapitError(f"cannot read {path}: {exc.strerror or exc}", ExitCode.STATE) from None
    finally:
        os.close(fd)


def resolve(path: Path) -> Path:
    """The file a (possibly symlinked) path names: edits go through the link to its target."""
    return Path(os.path.realpath(path))


def display(path: Path | str) -> str:
    """``~/...`` for paths under the home directory."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home):]
    return text


class Change:
    """One planned change; subclasses describe, apply and undo it."""

    label = ""

    def diff(self) -> str:
        raise NotImplementedError

    def apply(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError


@dataclass
class FileChange(Change):
    path: Path  # as the person knows it (may be a symlink)
    real: Path  # the file actually written
    old: bytes | None
    new: bytes | None  # None: remove the file
    mode: int = 0o600
    secrets: tuple[str, ...] = ()
    backup: bool = True
    old_mode: int | None = None
    summary: str | None = None  # shown instead of a diff (capit's own side files)
    _applied: bool = field(default=False, repr=False)
    _backup_before: bytes | None = field(default=None, repr=False)
    _backup_mode: int | None = field(default=None, repr=False)
    _backup_written: bool = field(default=False, repr=False)
    _made_dirs: list[Path] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:  # type: ignore[override]
        return display(self.path)

    @property
    def backup_path(self) -> Path:
        return self.real.with_name(self.real.name + BACKUP_SUFFIX)

    def diff(self) -> str:
        if self.summary is not None:
            return self.summary + "\n"
        old = (self.old or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        new = (self.new or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        name = display(self.path)
        before = "/dev/null" if self.old is None else name
        after = "/dev/null" if self.new is None else f"{name} (after)"
        lines = []
        for line in difflib.unified_diff(old, new, before, after, n=2):
            lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        text = "".join(lines)
        if self.new is not None and self.old is not None and self.mode != self.old_mode \
                and self.old_mode is not None:
            text += f"(mode {self.old_mode:04o} -> {self.mode:04o})\n"
        return mask_text(text, self.secrets)

    def _write(self, path: Path, data: bytes, mode: int) -> None:
        from capit.fsutil import atomic_write

        missing = []
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            missing.append(parent)
            parent = parent.parent
        try:
            os.makedirs(path.parent, mode=0o700, exist_ok=True)
            self._made_dirs += missing
        except OSError as exc:
            raise CapitError(f"cannot create {path.parent}: {exc.strerror or exc}",
                             ExitCode.STATE) from None
        atomic_write(path, data, mode=mode, what="file")

    def _remove(self, path: Path) -> None:
        from capit.fsutil import fsync_dir

        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CapitError(f"cannot remove {path}: {exc.strerror or exc}",
                             ExitCode.STATE) from None
        fsync_dir(path.parent)

    def apply(self) -> None:
        current, _ = read_file(self.real)
        if current != self.old:
            raise CapitError(f"{display(self.path)} changed while capit was working; nothing "
                             "was written to it", ExitCode.STATE)
        if self.backup and self.old is not None:
            self._backup_before, self._backup_mode = read_file(self.backup_path)
            self._write(self.backup_path, self.old, 0o600)
            self._backup_written = True
        try:
            if self.new is None:
                self._remove(self.real)
            else:
                self._write(self.real, self.new, self.mode)
        except BaseException:
            self._restore_backup()
            self._remove_made_dirs()
            raise
        self._applied = True

    def _remove_made_dirs(self) -> None:
        """Directories this change created, removed again if still empty (deepest first)."""
        for directory in self._made_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        self._made_dirs = []

    def _restore_backup(self) -> None:
        if not self._backup_written:
            return
        if self._backup_before is None:
            self._remove(self.backup_path)
        else:
            self._write(self.backup_path, self._backup_before, self._backup_mode or 0o600)
        self._backup_written = False

    def undo(self) -> None:
        if not self._applied:
            return
        current, _ = read_file(self.real)
        if current != self.new:
            ui.warn(f"{display(self.path)} changed after capit wrote it; it was not restored")
            return
        if self.old is None:
            self._remove(self.real)
        else:
            self._write(self.real, self.old, self.old_mode or self.mode)
        self._restore_backup()
        self._remove_made_dirs()
        self._applied = False


def show(changes: list[Change]) -> None:
    for change in changes:
        text = change.diff()
        if text:
            ui.info(text.rstrip("\n"))


def apply_all(changes: list[Change], *, question: str | None = None,
              assume_yes: bool = False) -> Callable[[], None]:
    """Show the changes, ask (unless ``assume_yes``), apply them all or none.

    Returns a function that undoes them (in reverse order).
    """
    if not changes:
        return lambda: None
    if question is not None and not assume_yes:
        show(changes)
        ui.confirm(question, assume_yes=assume_yes)
    done: list[Change] = []
    try:
        for change in changes:
            change.apply()
            done.append(change)
    except BaseException:
        _undo(done)
        raise

    def undo() -> None:
        _undo(done)

    return undo


def _undo(done: list[Change]) -> None:
    for change in reversed(done):
        try:
            change.undo()
        except CapitError as err:
            ui.warn(f"could not restore {change.label}: {err.message}")
        except OSError as err:
            with contextlib.suppress(Exception):
                ui.warn(f"could not restore {change.label}: {err}")
