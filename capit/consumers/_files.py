"""Consumers that write a key into the files a tool reads: plan, show, write, undo, uninstall.

A :class:`FileConsumer` names its :class:`Target` files and the :class:`Field` values to
set in each.  Installing:

* parses each file with its format's rules; one that does not parse is left untouched and
  the delivery fails (the minted key is revoked);
* sets only the named values, re-parses the result and checks that everything else is
  the same as before;
* writes atomically, 0600 when the file holds a key, after a backup ``<file>.capit.bak``;
  a symlink is followed and its target edited (the link stays a link);
* when it replaces a value the person set themselves, first keeps a copy of the file as
  it was, ``<file>.capit-orig`` (0600), so uninstalling can put their value back.

The ledger stores, per delivery, which values were written where -- for keys a
fingerprint, never the key -- so ``capit uninstall --agent X`` removes exactly what capit
put there (and only if it is still there) and restores what was there before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capit.configedit import (
    FORMAT_TITLES,
    MISSING,
    ConfigSyntaxError,
    Document,
    UnsupportedEdit,
    describe_path,
    load,
    path_from_json,
    path_to_json,
    without,
)
from capit.configedit.changes import Change, FileChange, display, read_file, resolve
from capit.consumers import Consumer, Delivery, UninstallPlan
from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform

ORIG_SUFFIX = ".capit-orig"


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()
KEEP: Any = object()  # from a computed value: leave this path alone


@dataclass
class Field:
    """A value to set (or, with DELETE, to remove) at ``path`` in a file.

    ``value`` may be a function of (the current value or MISSING, the document) returning
    the value, DELETE, or KEEP (change nothing there).
    """

    path: tuple
    value: Any = DELETE
    secret: bool = False


@dataclass
class Target:
    path: Path  # where the tool reads it
    fmt: str
    fields: list[Field]
    template: str = ""  # the text of a new file before the fields are set
    secret: bool = True  # the file will hold a key: 0600
    source: str = ""  # the documentation saying the tool reads it there


@dataclass
class FilePlan:
    changes: list[Change] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


def fingerprint(value: Any) -> str:
    """A short digest identifying a value capit wrote, so the ledger never holds a key."""
    data = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(b"capit-config-value\0" + data).hexdigest()[:32]


def _stored(f: Field) -> dict[str, Any]:
    if f.value is DELETE:
        return {"deleted": True}
    if f.secret:
        return {"fingerprint": fingerprint(f.value)}
    return {"value": f.value}


def _matches(stored: dict[str, Any], current: Any) -> bool:
    if stored.get("deleted"):
        return current is MISSING
    if current is MISSING:
        return False
    if "fingerprint" in stored:
        return fingerprint(current) == stored["fingerprint"]
    return stored.get("value") == current


def _secret_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secret_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secret_strings(v)]
    return []


def _open(raw: bytes | None, path: Path, fmt: str, template: str) -> Document:
    try:
        try:
            text = raw.decode("utf-8") if raw is not None else template
        except UnicodeDecodeError:
            raise ConfigSyntaxError("it is not UTF-8 text") from None
        return load(fmt, text)
    except ConfigSyntaxError as exc:
        raise CapitError(
            f"{display(path)} is not valid {FORMAT_TITLES[fmt]} ({exc}); capit left it "
            "untouched", ExitCode.DELIVERY) from None
    except UnsupportedEdit as exc:
        raise CapitError(f"capit cannot edit {display(path)} safely ({exc}); capit left it "
                         "untouched", ExitCode.DELIVERY) from None


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == [] or value == ""


def plan_install(targets: list[Target], prior: list[dict[str, Any]],
                 secrets: tuple[str, ...] = ()) -> FilePlan:
    """What installing means for each target file; nothing is written yet.

    ``secrets`` are masked in the diffs shown (the new key)."""
    plan = FilePlan()
    previous: dict[str, list[dict[str, Any]]] = {}
    for record in prior:
        for rec in record.get("files", []):
            previous.setdefault(rec.get("real", ""), []).append(rec)
    for target in targets:
        real = resolve(target.path)
        if real.is_dir():
            raise CapitError(f"{display(target.path)} is a directory", ExitCode.DELIVERY)
        old, old_mode = read_file(real)
        doc = _open(old, target.path, target.fmt, target.template)
        before = doc.data()
        earlier: dict[str, list[dict[str, Any]]] = {}
        for rec in previous.get(str(real), []):
            for fr in rec.get("fields", []):
                earlier.setdefault(json.dumps(fr["path"]), []).append(fr)
        own_values: list[tuple[tuple, Any]] = []
        created: list[tuple] = []
        fields_out = []
        shown: list[str] = list(secrets)
        fields: list[Field] = []
        try:
            for f in target.fields:
                current = doc.get(f.path)
                if callable(f.value):
                    f = Field(f.path, f.value(current, doc), f.secret)
                    if f.value is KEEP:
                        continue
                fields.append(f)
                key = json.dumps(path_to_json(f.path))
                capits = [fr for fr in earlier.get(key, []) if _matches(fr, current)]
                if current is MISSING:
                    had = False
                elif capits:  # a value capit put there: what was before it still counts
                    had = bool(capits[0].get("had"))
                else:
                    had = True
                    own_values.append((f.path, current))
                if f.secret and current is not MISSING:
                    shown += _secret_strings(current)
                for depth in range(1, len(f.path)):
                    parent = f.path[:depth]
                    if doc.get(parent) is MISSING and parent not in created:
                        created.append(parent)
                if f.value is DELETE:
                    doc.delete(f.path)
                else:
                    doc.set(f.path, f.value)
                    if f.secret:
                        shown += _secret_strings(f.value)
                fields_out.append({"path": path_to_json(f.path), "had": had, **_stored(f)})
        except UnsupportedEdit as exc:
            raise CapitError(f"capit cannot edit {display(target.path)} safely ({exc}); capit "
                             "left it untouched", ExitCode.DELIVERY) from None
        new_text = doc.text()
        _verify(target, fields, before, new_text, created)
        new = new_text.encode("utf-8")
        mode = 0o600 if target.secret else (old_mode if old_mode is not None else 0o644)
        plan.changes.append(FileChange(target.path, real, old, new, mode=mode,
                                       secrets=tuple(shown), old_mode=old_mode))
        orig_path = real.with_name(real.name + ORIG_SUFFIX)
        if own_values:
            assert old is not None
            orig_old, _ = read_file(orig_path)
            if orig_old is None:
                orig_new = old
            else:
                orig_doc = _open(orig_old, orig_path, target.fmt, "")
                try:
                    for path, value in own_values:
                        orig_doc.set(path, value)
                except UnsupportedEdit as exc:
                    raise CapitError(f"capit cannot update {display(orig_path)} ({exc}); "
                                     "nothing was written", ExitCode.DELIVERY) from None
                orig_new = orig_doc.text().encode("utf-8")
            kept = ", ".join(describe_path(p) for p, _ in own_values)
            plan.changes.insert(len(plan.changes) - 1, FileChange(
                orig_path, orig_path, orig_old, orig_new, mode=0o600, secrets=tuple(shown),
                backup=False, summary=f"(your own {kept} is kept in {display(orig_path)}, "
                                      "0600, and put back by capit uninstall)"))
        plan.records.append({
            "path": str(target.path), "real": str(real), "format": target.fmt,
            "created": old is None, "mode": old_mode, "fields": fields_out,
            "created_parents": [path_to_json(p) for p in created],
            "template": target.template if old is None else None,
        })
    return plan


def _verify(target: Target, fields: list[Field], before: Any, new_text: str,
            created: list[tuple]) -> None:
    """The new text parses, holds the new values, and everything else is as it was."""
    try:
        after = load(target.fmt, new_text)
    except (ConfigSyntaxError, UnsupportedEdit) as exc:  # pragma: no cover - a capit bug
        raise CapitError(f"capit's edit of {display(target.path)} did not parse ({exc}); "
                         "nothing was written", ExitCode.INTERNAL) from None
    paths = [f.path for f in fields] + created
    for f in fields:
        got = after.get(f.path)
        want = MISSING if f.value is DELETE else f.value
        if got != want and not (got is MISSING and want is MISSING):
            raise CapitError(f"capit's edit of {display(target.path)} did not hold "
                             f"{describe_path(f.path)}; nothing was written", ExitCode.INTERNAL)
    if without(before, paths) != without(after.data(), paths):
        raise CapitError(f"capit's edit of {display(target.path)} would have changed other "
                         "settings; nothing was written", ExitCode.INTERNAL)


def plan_uninstall(records: list[dict[str, Any]]) -> UninstallPlan:
    """Remove what the given deliveries wrote, restoring the person's own earlier values."""
    plan = UninstallPlan()
    by_file: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        for rec in record.get("files", []):
            by_file.setdefault(rec.get("real", ""), []).append(rec)
    for real_text, recs in by_file.items():
        first = recs[0]
        shown = Path(recs[-1].get("path") or real_text)
        real = Path(real_text)
        fmt = first.get("format", "json")
        current, _ = read_file(real)
        orig_path = real.with_name(real.name + ORIG_SUFFIX)
        orig_raw, _ = read_file(orig_path)
        if current is None:
            plan.notes.append(f"{display(shown)} no longer exists; nothing to remove there")
            continue
        try:
            doc = _open(current, shown, fmt, "")
        except CapitError as err:
            plan.notes.append(f"{err.message}: remove the key from it by hand")
            continue
        orig_doc = None
        if orig_raw is not None:
            try:
                orig_doc = _open(orig_raw, orig_path, fmt, "")
            except CapitError as err:
                plan.notes.append(err.message)
        stored: dict[str, list[dict[str, Any]]] = {}
        had: dict[str, bool] = {}
        order: list[str] = []
        created: list[tuple] = []
        for rec in recs:
            for fr in rec.get("fields", []):
                key = json.dumps(fr["path"])
                if key not in stored:
                    order.append(key)
                    had[key] = bool(fr.get("had"))
                stored.setdefault(key, []).append(fr)
            for p in rec.get("created_parents", []):
                if path_from_json(p) not in created:
                    created.append(path_from_json(p))
        secrets: list[str] = []
        try:
            for key in order:
                path = path_from_json(json.loads(key))
                now = doc.get(path)
                if not any(_matches(fr, now) for fr in stored[key]):
                    plan.notes.append(f"left {describe_path(path)} in {display(shown)} as it "
                                      "is: it changed after capit wrote it")
                    continue
                if any("fingerprint" in fr for fr in stored[key]):
                    secrets += _secret_strings(now)
                before = orig_doc.get(path) if orig_doc is not None else MISSING
                if had[key] and before is not MISSING:
                    doc.set(path, before)
                    if any("fingerprint" in fr for fr in stored[key]):
                        secrets += _secret_strings(before)
                elif now is not MISSING:
                    if had[key]:
                        plan.notes.append(f"the value of {describe_path(path)} in "
                                          f"{display(shown)} before capit was not found "
                                          f"({display(orig_path)} is missing); removed it")
                    doc.delete(path)
            for parent in sorted(created, key=len, reverse=True):
                if _empty(doc.get(parent)):
                    doc.delete(parent)
        except UnsupportedEdit as exc:
            plan.notes.append(f"capit cannot edit {display(shown)} safely ({exc}); remove the "
                              "key from it by hand")
            continue
        created_file = bool(first.get("created"))
        new: bytes | None = doc.text().encode("utf-8")
        if created_file and (doc.is_empty() or doc.text() == first.get("template")):
            new = None
        mode = first.get("mode") if not created_file else 0o600
        change = FileChange(shown, real, current, new, mode=mode or 0o600,
                            secrets=tuple(secrets), backup=new is not None)
        if new != current:
            plan.changes.append(change)
        if new is None:  # capit created the file: its backups go with it
            bak, _ = read_file(change.backup_path)
            if bak is not None:
                plan.changes.append(FileChange(
                    change.backup_path, change.backup_path, bak, None, backup=False,
                    secrets=tuple(secrets),
                    summary=f"(removes capit's backup {display(change.backup_path)})"))
        if orig_raw is not None:
            plan.changes.append(FileChange(
                orig_path, orig_path, orig_raw, None, backup=False, secrets=tuple(secrets),
                summary=f"(removes {display(orig_path)}, the copy kept for this)"))
        plan.locations.append(display(shown))
    return plan


class FileConsumer(Consumer):
    """A consumer that sets values in one or more files the tool reads."""

    platforms: tuple[str, ...] | None = ("openrouter",)

    def targets(self, key: str, platform: Platform) -> list[Target]:
        raise NotImplementedError

    def notes(self, platform: Platform) -> list[str]:
        """Things the person should know after the install (shown on stderr)."""
        return []

    def where(self, platform: Platform | None = None) -> str:
        from capit.platforms import get_platform

        plat = platform or get_platform("openrouter")
        assert plat is not None
        parts = []
        for t in self.targets("<key>", plat):
            names = "the key" if t.fmt == "raw" else ", ".join(
                describe_path(f.path) for f in t.fields if f.value is not DELETE)
            parts.append(f"{display(t.path)} ({names})" if names else display(t.path))
        return "; ".join(parts)

    def prior_records(self) -> list[dict[str, Any]]:
        from capit import ledger
        from capit.paths import capit_home

        return [d["record"] for d in ledger.deliveries(capit_home(), self.name)
                if isinstance(d.get("record"), dict)]

    def plan(self, key: str, platform: Platform) -> FilePlan:
        return plan_install(self.targets(key, platform), self.prior_records(), secrets=(key,))

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        from capit.configedit.changes import apply_all

        plan = self.plan(key.secret.reveal(), platform)
        where = ", ".join(display(r["path"]) for r in plan.records)
        undo: Callable[[], None] = apply_all(
            plan.changes, question=f"Write the new {platform.name} key into {where}?",
            assume_yes=assume_yes)
        return Delivery(
            consumer=self.name,
            summary=f"{key.short_cap()} {platform.name} key installed into {self.name} ({where})",
            location=where,
            record={"files": plan.records},
            notes=self.notes(platform),
            undo=undo,
        )

    def plan_uninstall(self, records: list[dict[str, Any]]) -> UninstallPlan:
        return plan_uninstall(records)
