"""Fixtures for the consumer tests (imported by the test modules): agent configs in a home.

``agent_home(name)`` copies ``tests/fixtures/agents/<name>/`` into the place the agent
reads it under the test's HOME.  ``install``/``uninstall`` drive the CLI the way a person
types it, against the ``sandbox`` provider, with the management key on stdin (``-i``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agents"


@pytest.fixture
def home() -> Path:
    return Path(os.environ["HOME"])


@pytest.fixture
def place(home):
    """place(fixture_dir, target_dir): copy the fixture's files into target_dir."""

    def _place(name: str, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        for item in (FIXTURES / name).iterdir():
            shutil.copy2(item, target / item.name)
            os.chmod(target / item.name, 0o644)
        return target

    return _place


@pytest.fixture
def install(run, sandbox):
    def _install(*agents: str, extra: tuple[str, ...] = (), yes: bool = True,
                 answer: str | None = None):
        args = ["openrouter", "5"]
        for agent in agents:
            args += ["--agent", agent]
        if yes:
            args.append("-y")
        text = f"{sandbox.management_key}\n" + (f"{answer}\n" if answer is not None else "")
        return run(*args, "-i", *extra, input=text)

    return _install


@pytest.fixture
def uninstall(run, sandbox):
    def _uninstall(*agents: str, yes: bool = True, answer: str | None = None):
        args = ["uninstall"]
        for agent in agents:
            args += ["--agent", agent]
        if yes:
            args.append("-y")
        text = (f"{answer}\n" if answer is not None else "") + f"{sandbox.management_key}\n"
        return run(*args, "-i", input=text)

    return _uninstall


@pytest.fixture
def live_keys(sandbox):
    """The keys that exist (not deleted) on the sandbox, by hash."""

    def _live() -> dict[str, dict]:
        return {k["hash"]: k for k in sandbox.keys_snapshot()}

    return _live


class MemoryKeyring:
    """A keyring backend in memory, so tests never touch the machine's keyring."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}


@pytest.fixture
def memory_keyring(monkeypatch):
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend
    from keyring.errors import PasswordDeleteError

    store = MemoryKeyring()

    class Backend(KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            return store.entries.get((service, username))

        def set_password(self, service, username, password):
            store.entries[(service, username)] = password

        def delete_password(self, service, username):
            if (service, username) not in store.entries:
                raise PasswordDeleteError("not found")
            del store.entries[(service, username)]

    previous = keyring.get_keyring()
    keyring.set_keyring(Backend())
    yield store
    keyring.set_keyring(previous)
