"""``--agent goose``: Block's goose.  The key is a goose *secret*; the provider a setting.

Where goose reads it (shared/reference/consumers.md and goose's source):

* the config directory: ``$GOOSE_PATH_ROOT/config`` (absolute paths only), else
  ``$XDG_CONFIG_HOME/goose`` / ``~/.config/goose`` on Linux and macOS and
  ``%APPDATA%\\Block\\goose\\config`` on Windows (block/goose crates/goose/src/config/paths.rs);
* secrets, such as ``OPENROUTER_API_KEY``, come from the environment, then the system
  keyring (service ``goose``, user ``secrets``: one JSON object), and from
  ``secrets.yaml`` in the config directory when the keyring is off
  (``GOOSE_DISABLE_KEYRING``, in the environment or config.yaml) or holds no goose entry
  (crates/goose/src/config/base.rs, base/secrets.rs); "Provider API keys placed in
  config.yaml are ignored" -- https://www.developersdigest.tech/setup/openrouter/goose ;
* ``GOOSE_PROVIDER: openrouter`` (and ``OPENROUTER_HOST``) in ``config.yaml`` --
  https://block.github.io/goose/docs/guides/config-files .

So capit writes ``secrets.yaml`` when goose reads it.  When goose's secrets live in the
keyring, capit updates that entry on macOS (the Keychain item is shared by service and
account, so Python's ``keyring`` and goose name the same item); elsewhere it refuses
before minting, because the Linux Secret Service and Windows Credential Manager items
goose creates are not ones Python's ``keyring`` would update in place.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from capit import ui
from capit.configedit import MISSING
from capit.configedit.changes import Change, apply_all, display, mask_text
from capit.consumers import Delivery, UninstallPlan
from capit.consumers._common import (
    environ,
    home_dir,
    is_windows,
    isabs,
    on_path,
    pure,
    real,
    site_root,
    xdg_dir,
)
from capit.consumers._files import (
    DELETE,
    KEEP,
    Field,
    FileConsumer,
    Target,
    fingerprint,
    plan_install,
    plan_uninstall,
)
from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform

SERVICE, USERNAME = "goose", "secrets"
ORIG_SERVICE, ORIG_USERNAME = "capit", "goose-secrets-before-capit"
KEY_NAME = "OPENROUTER_API_KEY"
DEFAULT_HOST = "https://openrouter.ai"


def config_dir(env: Mapping[str, str] | None = None, home: str | None = None,
               system: str | None = None) -> PurePath:
    env = environ(env)
    root = env.get("GOOSE_PATH_ROOT", "")
    if root and isabs(root, system):
        return pure(system)(root) / "config"
    if is_windows(system):
        appdata = env.get("APPDATA") or str(home_dir(home, system) / "AppData" / "Roaming")
        return pure(system)(appdata) / "Block" / "goose" / "config"
    return xdg_dir("XDG_CONFIG_HOME", (".config",), env, home, system) / "goose"


def _system() -> str:
    return sys.platform


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        return None
    return keyring


class KeyringChange(Change):
    """Replace one system keyring entry (a JSON object of goose's secrets)."""

    def __init__(self, service: str, username: str, old: str | None, new: str | None,
                 secrets: tuple[str, ...]) -> None:
        self.service = service
        self.username = username
        self.old = old
        self.new = new
        self.secrets = secrets
        self._applied = False

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"keyring entry {self.service}/{self.username}"

    def diff(self) -> str:
        import difflib

        def lines(value: str | None) -> list[str]:
            if value is None:
                return []
            try:
                return (json.dumps(json.loads(value), indent=2, sort_keys=True) + "\n") \
                    .splitlines(keepends=True)
            except ValueError:
                return ["(not JSON)\n"]

        text = "".join(difflib.unified_diff(lines(self.old), lines(self.new),
                                            f"a/{self.label}", f"b/{self.label}", n=2))
        return mask_text(text, self.secrets)

    def _set(self, value: str | None) -> None:
        keyring = _keyring()
        try:
            if value is None:
                keyring.delete_password(self.service, self.username)
            else:
                keyring.set_password(self.service, self.username, value)
        except Exception as exc:  # noqa: BLE001 - keyring backends raise many kinds
            raise CapitError(f"cannot write the {self.label}: {exc}", ExitCode.STATE) from None

    def _get(self) -> str | None:
        try:
            return _keyring().get_password(self.service, self.username)
        except Exception as exc:  # noqa: BLE001
            raise CapitError(f"cannot read the {self.label}: {exc}", ExitCode.STATE) from None

    def apply(self) -> None:
        if self._get() != self.old:
            raise CapitError(f"the {self.label} changed while capit was working; nothing was "
                             "written to it", ExitCode.STATE)
        self._set(self.new)
        self._applied = True

    def undo(self) -> None:
        if not self._applied:
            return
        if self._get() != self.new:
            ui.warn(f"the {self.label} changed after capit wrote it; it was not restored")
            return
        self._set(self.old)
        self._applied = False


class Goose(FileConsumer):
    name = "goose"
    title = "goose"
    description = "goose: OPENROUTER_API_KEY as a goose secret; GOOSE_PROVIDER: openrouter"

    def detected(self) -> bool | None:
        return real(config_dir()).is_dir() or on_path("goose")

    def where(self, platform: Platform | None = None) -> str:
        directory = display(real(config_dir()))
        return (f"{KEY_NAME} in goose's keyring entry ({SERVICE}/{USERNAME}) or "
                f"{directory}/secrets.yaml; GOOSE_PROVIDER in {directory}/config.yaml")

    # -- where goose keeps secrets here ----------------------------------------------------

    def _keyring_disabled(self) -> bool:
        if "GOOSE_DISABLE_KEYRING" in os.environ:
            return True
        from capit.configedit import ConfigSyntaxError, load
        from capit.configedit.changes import read_file

        raw, _ = read_file(real(config_dir()) / "config.yaml")
        if raw is None:
            return False
        try:
            value = load("yaml", raw.decode("utf-8", errors="replace")).get(
                ("GOOSE_DISABLE_KEYRING",))
        except (ConfigSyntaxError, ValueError):
            return False
        return value is True or value in ("true", "1")

    def secret_store(self) -> tuple[str, str | None]:
        """("file", None), or ("keyring", the entry's JSON); CapitError if capit cannot."""
        if self._keyring_disabled():
            return "file", None
        keyring = _keyring()
        if keyring is None:
            raise CapitError(
                "goose keeps its keys in the system keyring and capit cannot check it: "
                "install capit's keyring support (pip install 'capit[keyring]') or set "
                "GOOSE_DISABLE_KEYRING=1 for goose; nothing was minted", ExitCode.DELIVERY)
        try:
            current = keyring.get_password(SERVICE, USERNAME)
        except Exception:  # noqa: BLE001 - no usable keyring: goose uses secrets.yaml too
            return "file", None
        if current is None:
            return "file", None  # goose falls back to secrets.yaml without a keyring entry
        if _system() != "darwin":
            raise CapitError(
                "goose keeps its keys in the system keyring here, which capit does not edit "
                "on this system: mint the key with --agent env and paste it into 'goose "
                "configure' (or set GOOSE_DISABLE_KEYRING=1 for goose); nothing was minted",
                ExitCode.DELIVERY)
        return "keyring", current

    def check(self, platform: Platform) -> None:
        self.secret_store()

    # -- what to write ---------------------------------------------------------------------

    def targets(self, key: str, platform: Platform, *, store: str = "file") -> list[Target]:
        directory = real(config_dir())
        host = site_root(platform)

        def model(current: Any, doc: Any) -> Any:
            provider = doc.get(("GOOSE_PROVIDER",))
            if current is MISSING or provider == "openrouter" or "/" in str(current):
                return KEEP
            return DELETE  # another provider's model name: goose's OpenRouter default

        def openrouter_host(current: Any, doc: Any) -> Any:
            if current is MISSING and host == DEFAULT_HOST:
                return KEEP
            return host

        targets = [Target(directory / "config.yaml", "yaml", [
            Field(("GOOSE_MODEL",), model),
            Field(("GOOSE_PROVIDER",), "openrouter"),
            Field(("OPENROUTER_HOST",), openrouter_host),
        ], secret=False, source="https://block.github.io/goose/docs/guides/config-files")]
        if store == "file":
            targets.insert(0, Target(directory / "secrets.yaml", "yaml",
                                     [Field((KEY_NAME,), key, secret=True)],
                                     source="block/goose crates/goose/src/config/base.rs"))
        return targets

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        value = key.secret.reveal()
        store, entry = self.secret_store()
        plan = plan_install(self.targets(value, platform, store=store), self.prior_records(),
                            secrets=(value,))
        record: dict[str, Any] = {"files": plan.records}
        where = [display(r["path"]) for r in plan.records]
        if store == "keyring":
            assert entry is not None
            changes, record["keyring"] = self._keyring_plan(entry, value)
            plan.changes = changes + plan.changes
            where.insert(0, f"keyring entry {SERVICE}/{USERNAME}")
        undo = apply_all(plan.changes, question=f"Write the new {platform.name} key into "
                                                f"{', '.join(where)}?", assume_yes=assume_yes)
        return Delivery(self.name, f"{key.short_cap()} {platform.name} key installed into "
                                   f"goose ({', '.join(where)})",
                        location=", ".join(where), record=record, undo=undo,
                        notes=["goose reads it when it starts (a shell with "
                               f"{KEY_NAME} set overrides it)."])

    def _keyring_plan(self, entry: str, key: str) -> tuple[list[Change], dict[str, Any]]:
        try:
            secrets = json.loads(entry)
        except ValueError:
            raise CapitError(f"goose's keyring entry {SERVICE}/{USERNAME} is not JSON; capit "
                             "left it untouched", ExitCode.DELIVERY) from None
        if not isinstance(secrets, dict):
            raise CapitError(f"goose's keyring entry {SERVICE}/{USERNAME} is not a JSON "
                             "object; capit left it untouched", ExitCode.DELIVERY)
        current = secrets.get(KEY_NAME, MISSING)
        earlier = [r.get("keyring") for r in self.prior_records() if r.get("keyring")]
        capits = [e for e in earlier if current is not MISSING
                  and fingerprint(current) == e.get("fingerprint")]
        changes: list[Change] = []
        shown = tuple(s for s in (key, current) if isinstance(s, str))
        if current is MISSING:
            had = False
        elif capits:
            had = bool(capits[0].get("had"))
        else:
            had = True
            orig = _keyring().get_password(ORIG_SERVICE, ORIG_USERNAME)
            changes.append(KeyringChange(ORIG_SERVICE, ORIG_USERNAME, orig,
                                         json.dumps({KEY_NAME: current}), shown))
        new = dict(secrets)
        new[KEY_NAME] = key
        changes.append(KeyringChange(SERVICE, USERNAME, entry, json.dumps(new), shown))
        return changes, {"fingerprint": fingerprint(key), "had": had}

    def plan_uninstall(self, records: list[dict[str, Any]]) -> UninstallPlan:
        plan = plan_uninstall(records)
        entries = [r["keyring"] for r in records if r.get("keyring")]
        if not entries:
            return plan
        keyring = _keyring()
        if keyring is None:
            plan.notes.append(f"capit cannot reach the system keyring now; remove {KEY_NAME} "
                              "with 'goose configure'")
            return plan
        label = f"goose's keyring entry {SERVICE}/{USERNAME}"
        try:
            entry = keyring.get_password(SERVICE, USERNAME)
            orig = keyring.get_password(ORIG_SERVICE, ORIG_USERNAME)
            secrets = json.loads(entry) if entry else {}
        except ValueError:
            plan.notes.append(f"{label} is not JSON any more; remove {KEY_NAME} by hand")
            return plan
        except Exception as exc:  # noqa: BLE001
            plan.notes.append(f"cannot read {label}: {exc}")
            return plan
        current = secrets.get(KEY_NAME, MISSING) if isinstance(secrets, dict) else MISSING
        if current is MISSING or not any(fingerprint(current) == e.get("fingerprint")
                                         for e in entries):
            plan.notes.append(f"left {KEY_NAME} in {label} as it is: it changed after capit "
                              "wrote it")
        else:
            new = dict(secrets)
            before = json.loads(orig).get(KEY_NAME, MISSING) if orig else MISSING
            if entries[0].get("had") and before is not MISSING:
                new[KEY_NAME] = before
            else:
                new.pop(KEY_NAME, None)
            shown = tuple(s for s in (current, before) if isinstance(s, str))
            plan.changes.insert(0, KeyringChange(SERVICE, USERNAME, entry, json.dumps(new),
                                                 shown))
            plan.locations.insert(0, f"keyring entry {SERVICE}/{USERNAME}")
        if orig is not None:
            plan.changes.append(KeyringChange(ORIG_SERVICE, ORIG_USERNAME, orig, None, ()))
        return plan
