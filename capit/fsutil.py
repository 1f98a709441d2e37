"""Private, atomic, locked file handling for everything capit writes.

* :func:`ensure_home` creates the capit home 0700 (and reports a home others can read);
* :func:`atomic_write` writes a 0600 temp file in the same directory, fsyncs it, renames
  it over the target and fsyncs the directory, refusing to follow a symlinked target;
* :func:`home_lock` serialises capit processes that change files in the home;
* :func:`append_durable` appends one line with O_APPEND and fsyncs it (the ledger).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from capit import ui
from capit.errors import CapitError, ExitCode

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted in the home must not hang
LOCK_TIMEOUT = 15.0


def _state_error(what: str, exc: OSError) -> CapitError:
    reason = exc.strerror or str(exc)
    return CapitError(f"{what}: {reason}", ExitCode.STATE)


def ensure_home(home: Path, *, create: bool = True) -> Path:
    """Make sure the capit home exists as a private directory."""
    try:
        st = os.stat(home)
    except FileNotFoundError:
        if not create:
            return home
        try:
            os.makedirs(home, mode=0o700, exist_ok=True)
            os.chmod(home, 0o700)
        except OSError as exc:
            raise _state_error(f"cannot create capit home {home}", exc) from None
        return home
    except OSError as exc:
        raise _state_error(f"cannot use capit home {home}", exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise CapitError(f"capit home {home} is not a directory", ExitCode.STATE)
    if st.st_mode & 0o077:
        ui.warn(
            f"{home} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 700 {home}"
        )
    return home


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return  # not supported (Windows); the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def refuse_symlink(path: Path, what: str) -> None:
    if path.is_symlink():
        raise CapitError(
            f"{what} {path} is a symbolic link; capit refuses to follow it", ExitCode.VAULT
        )


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, what: str = "file") -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    refuse_symlink(path, what)
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        raise _state_error(f"cannot write {path}", exc) from None
    try:
        try:
            try:
                os.fchmod(fd, mode)
            except (AttributeError, OSError):
                pass
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        # also on Ctrl-C or any other interruption: never leave a temp file behind
        _unlink_quietly(tmp)
        if isinstance(exc, OSError):
            raise _state_error(f"cannot write {path}", exc) from None
        raise
    fsync_dir(directory)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def read_private(path: Path, *, what: str = "file", max_bytes: int = 4 << 20) -> bytes | None:
    """Read a file capit owns; None if it does not exist. Refuses symlinks, reports loose modes."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CapitError(
                f"{what} {path} is a symbolic link; capit refuses to follow it", ExitCode.VAULT
            ) from None
        raise _state_error(f"cannot read {path}", exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CapitError(f"{what} {path} is not a regular file", ExitCode.STATE)
        if st.st_mode & 0o077 and os.name == "posix":
            ui.warn(
                f"{path} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {path}"
            )
        return read_regular(fd, st, max_bytes, f"{what} {path} is too large to be a capit file")
    except OSError as exc:
        raise _state_error(f"cannot read {path}", exc) from None
    finally:
        os.close(fd)


def read_regular(fd: int, st: os.stat_result, max_bytes: int, too_large: str) -> bytes:
    """The whole of an open regular file, refusing one larger than ``max_bytes`` (checked
    before and while reading, since the file may grow)."""
    if st.st_size > max_bytes:
        raise CapitError(too_large, ExitCode.STATE)
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise CapitError(too_large, ExitCode.STATE)


def append_durable(path: Path, line: bytes) -> None:
    """Append one line (O_APPEND, one write) and fsync it before returning."""
    existed = path.exists()
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CapitError(f"{path} is a symbolic link; capit refuses to follow it",
                             ExitCode.STATE) from None
        raise _state_error(f"cannot write {path}", exc) from None
    try:
        os.write(fd, line)
        os.fsync(fd)
    except OSError as exc:
        raise _state_error(f"cannot write {path}", exc) from None
    finally:
        os.close(fd)
    if not existed:
        fsync_dir(path.parent)


@contextlib.contextmanager
def home_lock(home: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An exclusive advisory lock on ``home/.lock`` held for a read-modify-write."""
    ensure_home(home)
    lock_path = home / ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    except OSError as exc:
        raise _state_error(f"cannot lock {home}", exc) from None
    try:
        _acquire(fd, lock_path, timeout)
        yield
    finally:
        _release(fd)
        os.close(fd)


def _acquire(fd: int, lock_path: Path, timeout: float) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        deadline = time.monotonic() + timeout
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise _lock_busy(lock_path) from None
                time.sleep(0.05)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise _lock_busy(lock_path) from None
            time.sleep(0.05)


def _release(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_busy(lock_path: Path) -> CapitError:
    return CapitError(
        f"another capit process holds {lock_path}; try again when it has finished",
        ExitCode.STATE,
    )
