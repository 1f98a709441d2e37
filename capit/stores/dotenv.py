"""capit 0.1.0's plaintext store, ``secrets.txt``: read, and migrate into the vault.

The file held ``PLATFORM=KEY`` lines under a comment header.  capit never writes new keys
into it.  ``capit keys migrate`` copies its keys into the vault and then overwrites the
file with random bytes, flushes it, and deletes it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from capit.errors import CapitError, ExitCode
from capit.fsutil import atomic_write, fsync_dir, home_lock, read_private
from capit.paths import LEGACY_SECRETS
from capit.platforms import MasterKey
from capit.secret import Secret
from capit.stores import Store


def parse_dotenv(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name.strip() and value:
            values[name.strip().lower()] = value
    return values


class LegacyDotenv(Store):
    name = "dotenv"
    title = "dotenv (plaintext)"
    description = "capit 0.1.0's plaintext secrets.txt; read and migrate only"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / LEGACY_SECRETS

    def _read(self) -> dict[str, str]:
        raw = read_private(self.path, what="capit 0.1.0 secrets file")
        if raw is None:
            return {}
        return parse_dotenv(raw.decode("utf-8", errors="replace"))

    def exists(self) -> bool:
        return self.path.exists()

    def platforms(self) -> list[str]:
        return sorted(self._read())

    def get(self, platform: str) -> MasterKey | None:
        value = self._read().get(platform)
        return None if value is None else MasterKey(platform, Secret(value), store="dotenv")

    def put(self, master: MasterKey) -> None:
        raise CapitError("capit no longer writes plaintext keys; use the vault", ExitCode.USAGE)

    def remove(self, platform: str) -> bool:
        with home_lock(self.home):
            raw = read_private(self.path, what="capit 0.1.0 secrets file")
            if raw is None:
                return False
            kept, removed = [], False
            for line in raw.decode("utf-8", errors="replace").splitlines(keepends=True):
                name = line.strip().removeprefix("export ").partition("=")[0].strip().lower()
                if name == platform and "=" in line and not line.lstrip().startswith("#"):
                    removed = True
                    continue
                kept.append(line)
            if not removed:
                return False
            if any(parse_dotenv("".join(kept))):
                self._replace_and_scrub("".join(kept).encode())
            else:
                self._destroy_locked()
            return True

    def _replace_and_scrub(self, data: bytes) -> None:
        """Write the remaining lines atomically, then overwrite the replaced file's bytes:
        the removed key must not stay readable in the old, unlinked inode."""
        try:
            old = os.open(self.path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            old = None
        try:
            atomic_write(self.path, data, what="secrets file")
            if old is not None:
                with contextlib.suppress(OSError):
                    os.pwrite(old, secrets.token_bytes(max(os.fstat(old).st_size, 1)), 0)
                    os.fsync(old)
        finally:
            if old is not None:
                os.close(old)

    def destroy(self) -> None:
        with home_lock(self.home):
            self._destroy_locked()

    def _destroy_locked(self) -> None:
        """Overwrite the plaintext file in place with random bytes, flush, then delete it."""
        if self.path.is_symlink():
            os.unlink(self.path)
            return
        try:
            size = self.path.stat().st_size
            with open(self.path, "r+b", buffering=0) as fh:
                fh.write(secrets.token_bytes(max(size, 1)))
                fh.flush()
                os.fsync(fh.fileno())
            os.unlink(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CapitError(f"cannot remove {self.path}: {exc.strerror}", ExitCode.STATE) from None
        fsync_dir(self.path.parent)
