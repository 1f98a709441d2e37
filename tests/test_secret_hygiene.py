"""The master key never leaves the process: not in files, output, verbose logs or tracebacks.

Every check looks for the key itself, its base64 and hex encodings, and any 12-character
window of its random part, so a partial leak (a "masked" form that shows too much, a
hex dump) is caught as well.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import pickle
import secrets
from pathlib import Path

import pytest
from conftest import PASS

from capit.errors import ExitCode
from capit.platforms import MasterKey
from capit.secret import Secret, mask, scrub

PREFIX = "sk-or-v1-"


def forms(value: str) -> list[str]:
    """Every spelling of value that must not appear anywhere."""
    raw = value.encode()
    out = {
        value, value.upper(), raw.hex(), raw.hex().upper(),
        base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="), base64.b32encode(raw).decode(),
    }
    body = value[len(PREFIX):] if value.startswith(PREFIX) else value
    out.update(body[i:i + 12] for i in range(0, len(body) - 11))
    return sorted(out)


def leaks(value: str, text: str) -> list[str]:
    return [f for f in forms(value) if f in text]


def files_under(*roots: Path) -> dict[str, bytes]:
    found = {}
    for root in roots:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file():
                    found[str(path)] = path.read_bytes()
    return found


def file_leaks(value: str, *roots: Path) -> list[str]:
    bad = []
    for name, data in files_under(*roots).items():
        text = data.decode("latin-1")
        bad += [f"{name}: {f}" for f in leaks(value, text)]
    return bad


@pytest.fixture
def user_home(tmp_path):
    return tmp_path / "home"


def verbose_run(run, *args, input=None):
    """``capit -v ARGS``; in-process, so drop the previous run's log handler first (it
    writes to that run's captured stderr) -- each real capit process starts without one."""
    from capit.cli import _common

    _common.state["verbose"] = False
    logger = logging.getLogger("capit")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    return run("-v", *args, input=input)


# ------------------------------------------------------------------------- end to end


def test_stored_master_key_appears_nowhere(run, sandbox, capit_home, user_home, tmp_path,
                                           monkeypatch):
    key = sandbox.management_key
    outputs = []

    added = verbose_run(run, "keys", "add", "openrouter", input=f"{key}\n{PASS}\n")
    assert added.code == 0, added
    outputs.append(added.output)
    recovery = [ln.strip() for ln in added.stdout.splitlines() if ln.strip()][0]

    minted = verbose_run(run, "openrouter", "5", "--json", input=f"{PASS}\n")
    assert minted.code == 0, minted
    outputs.append(minted.output)
    key_hash = json.loads(minted.stdout)["data"]["hash"]

    listed = verbose_run(run, "keys", "list", "-r", "openrouter", input=f"{PASS}\n")
    assert listed.code == 0, listed
    outputs.append(listed.output)

    deleted = verbose_run(run, "keys", "delete", "openrouter", key_hash[:16], input=f"{recovery}\n")
    assert deleted.code == 0, deleted
    outputs.append(deleted.output)

    enrolled = verbose_run(run, "vault", "enroll", "passphrase", input=f"{PASS}\n{PASS} 2\n")
    assert enrolled.code == 0, enrolled
    outputs.append(enrolled.output)
    outputs.append(verbose_run(run, "keys", "list").output)
    outputs.append(verbose_run(run, "vault", "slots", "--json").output)

    everything = "\n".join(outputs)
    # -v really logged the provider requests (so this test can see a leak in them)
    for request in ("GET /key ", "POST /keys ", "GET /keys?", "DELETE /keys/"):
        assert f"capit: openrouter {request}" in everything, request
    assert leaks(key, everything) == []
    assert PASS not in everything

    assert file_leaks(key, capit_home, user_home) == []
    assert file_leaks(PASS, capit_home, user_home) == []
    assert file_leaks(recovery, capit_home, user_home) == []
    assert sorted(p.name for p in capit_home.iterdir()) == [
        ".lock", "ledger.jsonl", "master-lookup", "vault.json"]

    # and the key really is in the vault, sealed: the check above is not vacuous
    from capit.stores.vault import VaultStore

    secret_file = tmp_path / "rk"
    secret_file.write_text(recovery + "\n")
    monkeypatch.setenv("CAPIT_PASSPHRASE_FILE", str(secret_file))
    opened = VaultStore(capit_home).open()
    assert opened.get("openrouter").secret.reveal() == key


def test_ephemeral_master_key_leaves_no_trace(run, sandbox, capit_home, user_home):
    key = sandbox.management_key
    result = verbose_run(run, "openrouter", "5", "-i", input=f"{key}\n")
    assert result.code == 0, result
    assert result.stdout.strip().startswith(PREFIX)
    assert "capit: openrouter POST /keys -> 201" in result.stderr
    assert leaks(key, result.output) == []
    assert file_leaks(key, capit_home, user_home) == []
    assert not (capit_home / "vault.json").exists()
    assert not (capit_home / "master-lookup").exists()
    listed = verbose_run(run, "keys", "list", "-r", "openrouter", "-i", input=f"{key}\n")
    assert listed.code == 0, listed
    assert leaks(key, listed.output) == []
    assert file_leaks(key, capit_home, user_home) == []


def test_rejected_master_key_is_not_stored_or_shown(run, sandbox, capit_home, user_home):
    wrong = PREFIX + secrets.token_hex(32)
    result = verbose_run(run, "keys", "add", "openrouter", input=f"{wrong}\n{PASS}\n")
    assert result.code == ExitCode.AUTH, result
    assert leaks(wrong, result.output) == []
    assert file_leaks(wrong, capit_home, user_home) == []
    assert not (capit_home / "vault.json").exists()


@pytest.mark.parametrize("verbose", [True, False])
def test_internal_error_is_scrubbed(run, stored_key, monkeypatch, verbose):
    from capit.platforms.openrouter import OpenRouter

    key = stored_key.management_key

    def explode(self, master, request):
        try:
            raise ValueError(f"inner: Bearer {master.secret.reveal()}")
        except ValueError as inner:
            raise RuntimeError(
                f"provider blew up with {master.secret.reveal()} (passphrase {PASS})"
            ) from inner

    monkeypatch.setattr(OpenRouter, "issue", explode)
    if verbose:
        result = verbose_run(run, "openrouter", "5", input=f"{PASS}\n")
    else:
        result = run("openrouter", "5", input=f"{PASS}\n")
    assert result.code == ExitCode.INTERNAL, result
    assert "RuntimeError" in result.stderr
    assert ("Traceback" in result.stderr) is verbose
    if verbose:
        assert "inner: Bearer" in result.stderr  # the chained exception is shown, scrubbed
    assert mask(key) in result.stderr
    assert leaks(key, result.output) == []
    assert PASS not in result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("capit: internal error")]
    assert len(errors) == 1, result


# ------------------------------------------------------------------------- Secret itself


def test_secret_never_renders_its_value():
    value = PREFIX + secrets.token_hex(32)
    s = Secret(value)
    master = MasterKey("openrouter", s, {})
    renderings = [
        repr(s), str(s), format(s), f"{s}", f"{s!r}", f"{s!s}", f"{s:>100}", f"{s:s}",
        "%s" % s, "%r" % s, "{}".format(s), "{0!r}".format(s),  # noqa: UP030, UP031, UP032
        str([s]), str({"k": s}),
        repr((s,)), repr(master), str(master),
    ]
    for text in renderings:
        assert leaks(value, text) == [], text
        assert "…" in text
    assert s.reveal() == value
    assert s == Secret(value) and s != Secret(value + "x")
    with pytest.raises(TypeError):
        json.dumps({"k": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.deepcopy(master)
    with pytest.raises(TypeError):
        hash(s)
    assert not hasattr(s, "__dict__")


def test_log_records_are_scrubbed():
    from capit.cli._common import enable_verbose

    enable_verbose()  # what -v does; the fixture `isolated` removes the handler afterwards
    handler = logging.getLogger("capit").handlers[-1]
    value = PREFIX + secrets.token_hex(32)
    Secret(value)
    record = logging.LogRecord("capit.http", logging.INFO, __file__, 1,
                               "sending %s and %r", (value, {"auth": value}), None)
    text = handler.format(record)
    assert leaks(value, text) == []
    assert mask(value) in text


def test_recovery_key_is_masked_to_almost_nothing():
    """A recovery key is all short groups; masking must not print it group by group."""
    from capit.stores.slots import RecoverySlot

    text, _raw = RecoverySlot.generate()
    s = Secret(text)
    compact = text.replace("-", "")
    for rendered in (repr(s), scrub(f"the key is {text}."), mask(text)):
        windows = [compact[i:i + 8] for i in range(len(compact) - 7)]
        assert not any(w in rendered.replace("-", "") for w in windows), rendered
        assert text[:9] not in rendered


@pytest.mark.parametrize("value", [
    "correct horse battery staple",
    "my-dog-is-fluffy-and-old",
    "abcd-efgh-ijkl-mnop-qrst-uvwx",
])
def test_passphrases_are_not_shown_word_by_word(value):
    Secret(value)
    shown = mask(value)
    assert len(shown.replace("…", "")) <= 4, shown
    assert scrub(f"x {value} y") == f"x {shown} y"


@pytest.mark.parametrize(("value", "expected"), [
    (PREFIX + "0e6f" * 16, "sk-or-v1-…0e6f"),
    ("sk-ant-api03-" + "A" * 40, "sk-ant-…AAAA"),
    ("short", "…"),
])
def test_api_keys_keep_their_type_prefix(value, expected):
    assert mask(value) == expected
