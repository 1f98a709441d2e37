"""``--agent dotenv``: ``.env`` in the current directory (``PLATFORM_API_KEY=...``).

The line is what python-dotenv, Node's dotenv and most frameworks read.  In a git work
tree capit makes sure ``.env`` is ignored (``git check-ignore``), adding it to the
``.gitignore`` of the current directory if it is not, so the key is not committed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def git_work_tree(directory: Path) -> bool:
    return any((d / ".git").exists() for d in (directory, *directory.parents))


def ignored(directory: Path, name: str) -> bool:
    git = shutil.which("git")
    if git is not None:
        try:
            proc = subprocess.run([git, "check-ignore", "-q", "--", name], cwd=directory,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is not None and proc.returncode in (0, 1):
            return proc.returncode == 0
    try:
        lines = (directory / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.strip() in (name, f"/{name}", "*.env", f"{name}*")
               for line in lines.splitlines())


class DotenvConsumer(FileConsumer):
    name = "dotenv"
    title = ".env file"
    description = ".env in the current directory (and .gitignore in a git repository)"
    platforms = None

    def supports(self, platform: Platform) -> bool:
        return bool(platform.env_var)

    def unsupported_reason(self, platform: Platform) -> str:
        return f"{platform.name} names no environment variable for its keys"

    def where(self, platform: Platform | None = None) -> str:
        var = platform.env_var if platform and platform.env_var else "<PLATFORM>_API_KEY"
        return f"./.env ({var}=...); adds .env to ./.gitignore in a git repository"

    def targets(self, key: str, platform: Platform) -> list[Target]:
        here = Path.cwd()
        assert platform.env_var
        targets = [Target(here / ".env", "dotenv", [Field((platform.env_var,), key,
                                                          secret=True)])]
        if git_work_tree(here) and not ignored(here, ".env"):
            targets.append(Target(here / ".gitignore", "lines", [Field((".env",), True)],
                                  secret=False))
        return targets
