"""The ``--json`` contract: ``{"capit_json": 1, "kind": ..., "data": ...}``, frozen.

Each kind has a JSON Schema in tests/json_schemas/<kind>.json (closed objects: every field
required, no others allowed) and a section in docs/json-output.md.  Adding, removing,
renaming or retyping a field, renaming a kind, or adding a --json command without a schema
fails here.  An incompatible change needs JSON_VERSION bumped and new schemas.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import httpx
import pytest
from conftest import PASS
from jsonschema import Draft202012Validator

from capit.cli import cli
from capit.cli._common import JSON_VERSION
from capit.sandbox.state import key_hash

SCHEMAS = Path(__file__).parent / "json_schemas"
DOC = Path(__file__).parent.parent / "docs" / "json-output.md"

# every command with --json and the kinds it prints
COMMAND_KINDS = {
    "issue": {"key.issued", "keys.issued"},
    "keys list": {"keys.master", "keys.remote"},
    "keys delete": {"key.deleted"},
    "platforms": {"platforms"},
    "stores": {"stores"},
    "consumers": {"consumers"},
    "vault slots": {"vault.slots"},
}


def schema(kind: str) -> dict:
    return json.loads((SCHEMAS / f"{kind}.json").read_text())


def check(result, kind: str) -> dict:
    """Exit 0, stdout is exactly one JSON document, valid against the kind's schema."""
    assert result.code == 0, result
    doc = json.loads(result.stdout)
    errors = sorted(Draft202012Validator(schema(kind)).iter_errors(doc), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert doc["capit_json"] == 1 and doc["kind"] == kind
    return doc["data"]


# ------------------------------------------------------------------ the schemas themselves


def _objects(node, where="$"):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}[{i}]")


@pytest.mark.parametrize("kind", sorted({k for ks in COMMAND_KINDS.values() for k in ks}))
def test_schema_is_closed_and_versioned(kind):
    doc = schema(kind)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["properties"]["capit_json"] == {"const": JSON_VERSION}
    assert doc["properties"]["kind"] == {"const": kind}
    found = list(_objects(doc))
    assert found
    for where, obj in found:
        assert obj.get("additionalProperties") is False, where
        optional = {name for name, sub in obj["properties"].items()
                    if str(sub.get("description", "")).startswith("Optional:")}
        assert set(obj["required"]) == set(obj["properties"]) - optional, where


def test_every_json_command_has_a_schema_and_nothing_else_does():
    found = set()

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif any(isinstance(p, click.Option) and "--json" in p.opts for p in cmd.params):
            found.add(" ".join(path))

    walk(cli, ())
    assert found == set(COMMAND_KINDS)
    kinds = {k for ks in COMMAND_KINDS.values() for k in ks}
    assert {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")} == kinds


def test_docs_describe_every_kind_and_field():
    text = DOC.read_text()
    assert '"capit_json": 1' in text
    sections = re.split(r"^## ", text, flags=re.M)
    for kind in sorted({k for ks in COMMAND_KINDS.values() for k in ks}):
        matching = [s for s in sections if s.startswith(f"`{kind}`")]
        assert len(matching) == 1, f"docs/json-output.md: no '## `{kind}`' section"
        names: set[str] = set()
        for _, obj in _objects(schema(kind)["properties"]["data"]):
            names |= set(obj["properties"])
        for name in sorted(names):
            assert f"`{name}`" in matching[0], f"{kind}: field {name} is not documented"


# ------------------------------------------------------------------ the commands


def test_issue_plain(run, sandbox):
    result = run("openrouter", "5", "--json", "-i", input=f"{sandbox.management_key}\n")
    data = check(result, "key.issued")
    assert data["delivery"] is None
    assert key_hash(data["key"]) == data["hash"] == sandbox.keys_snapshot()[0]["hash"]
    assert data["cap"] == {"amount": "5.00", "unit": "USD", "period": "monthly"}
    assert data["expires_at"] is None and data["platform"] == "openrouter"
    assert sandbox.management_key not in result.output


def test_issue_delivered_with_expiry(run, sandbox):
    result = run("openrouter", "2.5", "--agent", "env", "--period", "none", "--expires",
                 "2031-01-31", "--json", "-i", input=f"{sandbox.management_key}\n")
    data = check(result, "key.issued")
    assert data["key"] is None  # the key went to the consumer, printed once there
    assert data["delivery"]["consumer"] == "env"
    assert data["delivery"]["output"].startswith("export OPENROUTER_API_KEY=sk-or-v1-")
    assert data["cap"] == {"amount": "2.50", "unit": "USD", "period": "none"}
    assert data["expires_at"] == "2031-01-31T00:00:00Z"
    assert re.fullmatch(r"env-[0-9a-f]{8}", data["name"])


def test_issue_example_consumer(run, sandbox):
    data = check(run("openrouter", "1", "--agent", "example", "-y", "--json", "-i",
                     input=f"{sandbox.management_key}\n"), "key.issued")
    assert data["delivery"]["consumer"] == "example" and "Key: sk-or-v1-" in \
        data["delivery"]["output"]


def test_issue_for_several_agents(run, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("openrouter", "3", "--agent", "env", "--agent", "dotenv", "-y", "--json",
                 "-i", input=f"{sandbox.management_key}\n")
    data = check(result, "keys.issued")
    assert [d["delivery"]["consumer"] for d in data] == ["env", "dotenv"]
    assert [d["key"] for d in data] == [None, None]
    assert data[1]["delivery"]["location"] == str(tmp_path / ".env")
    assert {d["hash"] for d in data} == {k["hash"] for k in sandbox.keys_snapshot()}


def test_master_keys(run, stored_key, capit_home):
    data = check(run("keys", "list", "--json"), "keys.master")
    assert [(r["platform"], r["store"], r["plaintext"]) for r in data] == \
        [("openrouter", "vault", False)]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", data[0]["added_at"])


def test_master_keys_empty_and_legacy(run, capit_home):
    assert check(run("--keys", "list", "--json"), "keys.master") == []
    capit_home.mkdir(mode=0o700)
    (capit_home / "secrets.txt").write_text("# capit\nopenrouter=sk-or-v1-" + "1" * 64 + "\n")
    data = check(run("--keys", "list", "--json"), "keys.master")
    assert data == [{"platform": "openrouter", "store": "dotenv", "plaintext": True,
                     "added_at": None}]
    (capit_home / "master-lookup").write_text(json.dumps(
        {"openrouter": {"store": "dotenv", "added_at": "2026-01-15 10:20"}}))
    data = check(run("--keys", "list", "--json"), "keys.master")
    assert data[0]["added_at"] == "2026-01-15 10:20"  # as capit 0.1.0 wrote it


def test_remote_keys(run, sandbox):
    empty = check(run("keys", "list", "-r", "openrouter", "--json", "-i",
                      input=f"{sandbox.management_key}\n"), "keys.remote")
    assert empty == {"platform": "openrouter", "keys": []}
    sandbox.cost = "0.0000005"  # a cheap call: usage far below a cent
    spender = sandbox.create_key("spender", limit=5, limit_reset="monthly",
                                 expires_at="2031-01-31T00:00:00Z")
    off = sandbox.create_key("off", limit=1)
    sandbox.create_key("uncapped")
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as http:
        r = http.post("/chat/completions", headers={"Authorization": f"Bearer {spender['key']}"},
                      json={"model": "openai/gpt-4o-mini",
                            "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        r = http.patch(f"/keys/{off['data']['hash']}", json={"disabled": True},
                       headers={"Authorization": f"Bearer {sandbox.management_key}"})
        assert r.status_code == 200, r.text
    data = check(run("keys", "list", "-r", "openrouter", "--json", "-i",
                     input=f"{sandbox.management_key}\n"), "keys.remote")
    rows = {k["name"]: k for k in data["keys"]}
    assert set(rows) == {"spender", "off", "uncapped"}
    assert rows["spender"]["usage"] == "0.0000005"  # plain decimal, never "5E-7"
    assert rows["spender"]["period"] == "monthly"
    assert rows["spender"]["expires_at"] == "2031-01-31T00:00:00Z"
    assert rows["off"]["status"] == "disabled" and rows["off"]["period"] == "none"
    assert rows["uncapped"]["limit"] is None and rows["uncapped"]["remaining"] is None
    assert rows["spender"]["hash"] == spender["data"]["hash"]


def test_key_deleted(run, sandbox):
    made = sandbox.create_key("doomed", limit=1)["data"]["hash"]
    data = check(run("keys", "delete", "openrouter", made[:16], "--json", "-i",
                     input=f"{sandbox.management_key}\n"), "key.deleted")
    assert data == {"platform": "openrouter", "hash": made, "name": "doomed"}
    assert sandbox.keys_snapshot() == []


def test_platforms(run, sandbox):
    data = check(run("platforms", "--json"), "platforms")
    assert [(p["name"], p["base_url"], p["master_key_store"]) for p in data][0] == \
        ("openrouter", sandbox.base_url, None)
    assert [(p["name"], p["unit"]) for p in data] == \
        [("openrouter", "USD"), ("unkey", "credits"), ("litellm", "USD")]


def test_platforms_with_a_stored_key(run, stored_key):
    data = check(run("--platforms", "--json"), "platforms")
    assert data[0]["master_key_store"] == "vault" and data[0]["unit"] == "USD"


def test_stores_fresh_and_legacy(run, capit_home):
    data = check(run("stores", "--json"), "stores")
    assert [s["name"] for s in data] == ["vault", "dotenv", "ephemeral"]
    assert data[0]["exists"] is False and data[1]["exists"] is False
    capit_home.mkdir(mode=0o700)
    (capit_home / "secrets.txt").write_text("openrouter=sk-or-v1-" + "2" * 64 + "\n")
    data = check(run("--stores", "--json"), "stores")
    assert data[1]["exists"] is True and data[1]["platforms"] == ["openrouter"]


def test_stores_with_a_vault_and_a_damaged_one(run, stored_key, capit_home):
    data = check(run("stores", "--json"), "stores")
    assert data[0]["exists"] is True and data[0]["platforms"] == ["openrouter"]
    assert [(s["id"], s["type"]) for s in data[0]["slots"]] == [("1", "passphrase"),
                                                               ("2", "recovery")]
    assert "error" not in data[0]
    (capit_home / "vault.json").write_bytes(b'{"format": "not a vault"')
    data = check(run("stores", "--json"), "stores")
    assert data[0]["error"] and data[0]["slots"] == []


def test_consumers(run):
    from capit.consumers import BUILTIN

    data = check(run("--consumers", "--json"), "consumers")
    assert [c["name"] for c in data] == list(BUILTIN)
    by_name = {c["name"]: c for c in data}
    assert by_name["claude"]["where"].startswith("~/.claude/settings.json (env.")
    assert by_name["cursor"]["where"].startswith("writes nothing")
    assert by_name["env"]["detected"] is None


def test_vault_slots(run, stored_key, capit_home):
    data = check(run("vault", "slots", "--json"), "vault.slots")
    assert data["path"] == str(capit_home / "vault.json")
    assert [(s["id"], s["type"], s["present"]) for s in data["slots"]] == \
        [("1", "passphrase", None), ("2", "recovery", None)]
    assert PASS not in json.dumps(data)
