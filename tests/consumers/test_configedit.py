"""The format editors: parse like the real parsers, change one value, leave every other
byte alone, and undo exactly."""

from __future__ import annotations

import io
import json

import json5
import pytest
import yaml
from consumers.compat import tomllib
from dotenv import dotenv_values

from capit.configedit import ConfigSyntaxError, Item, Prefixed, UnsupportedEdit, load
from capit.configedit.changes import mask_text
from capit.configedit.jsonc import JsonSyntaxError, JsonText, loads

JSON5_DOCS = [
    "{}",
    '{"a": 1, "b": [true, false, null], "c": {"d": -1.5e3}}',
    "// comment\n{unquoted: 'single', trailing: [1, 2,], hex: 0xFF, pos: +1, lead: .5,\n"
    " tail: 5., inf: Infinity, ninf: -Infinity, 'q\\'uote': \"a\\x41\\u0042\",}",
    "{/* block */ a: 'line \\\n continued', $dollar_: 1, _u: 2, ünï: 3}",
    '{"esc": "\\t\\n\\\\\\/\\"", "surrogate": "\\ud83d\\ude00", "nested": {"x": {"y": {}}}}',
    "{a: [ [], {}, [[1]] ], b: 'x\u2028y'}",
]


@pytest.mark.parametrize("text", JSON5_DOCS)
def test_json5_parser_agrees_with_the_json5_package(text):
    ours = loads(text, "json5")
    theirs = json5.loads(text)
    assert json.dumps(ours, sort_keys=True, default=str) == \
        json.dumps(theirs, sort_keys=True, default=str)


@pytest.mark.parametrize("text", [
    '{"a": 1, /* c */ "b": 2}', '{"a": 1,}', "{'a': 1}", '{"a": NaN}', '{"a": 01}',
    '{"a": 0x1}', '{a: 1}', '{"a": +1}', '{"a": .5}', '{"a": "\t"}', "[1] [2]", "",
])
def test_strict_json_refuses_what_json_parse_refuses(text):
    with pytest.raises(JsonSyntaxError):
        loads(text, "json")
    with pytest.raises(ValueError):
        json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


@pytest.mark.parametrize("text", [
    "{a: 'unterminated}", "{/* open", "{a b}", "{a: '\\01'}", "{a: 1,, b: 2}", "{,}",
    "{a: 1}}", "{a: 0x}", "{a: tru}",
])
def test_json5_refuses_invalid_text(text):
    with pytest.raises(JsonSyntaxError):
        loads(text, "json5")
    with pytest.raises(ValueError):
        json5.loads(text)


EDIT_CASES = [
    ("json", '{\n  "model": "opus",\n  "permissions": {\n    "allow": ["x"]\n  }\n}\n'),
    ("json", "{}\n"),
    ("json", '{"a": 1}'),
    ("json", '{\n\t"env": {\n\t\t"FOO": "bar"\n\t},\n\t"x": true\n}'),
    ("json", '{\r\n  "a": 1\r\n}\r\n'),
    ("json", '\ufeff{\n    "a": {}\n}\n'),
    ("json5", "// c\n{\n  gateway: { port: 1, },\n  env: {\n    OTHER: 'x', // keep\n  },\n"
              "  /* tail */\n}\n"),
    ("json5", "{\n  env: {\n    A: 1 // c\n  }\n}"),
    ("json5", "{\n  env: {\n    // nothing yet\n  },\n}\n"),
    ("jsonc", '{\n  "providers": {\n    "x": { "k": "$K" },\n  },\n}\n'),
]


@pytest.mark.parametrize("dialect, text", EDIT_CASES)
def test_set_then_delete_gives_the_original_bytes(dialect, text):
    doc = JsonText(text, dialect)
    had_env = doc.has(("env",))
    doc.set(("env", "TOKEN"), "sk-or-v1-abc")
    doc.set(("env", "EMPTY"), "")
    doc.set(("env", "NESTED"), {"type": "api", "key": "k"})
    parsed = json5.loads(doc.text) if dialect != "json" else json.loads(doc.text.lstrip("\ufeff"))
    assert parsed["env"]["TOKEN"] == "sk-or-v1-abc" and parsed["env"]["NESTED"]["key"] == "k"
    original = loads(text, dialect)
    assert {k: v for k, v in parsed.items() if k != "env"} == \
        {k: v for k, v in original.items() if k != "env"}
    for key in ("NESTED", "EMPTY", "TOKEN"):
        assert doc.delete(("env", key))
    if not had_env:
        doc.delete(("env",))
    assert doc.text == text


def test_replacing_a_value_touches_only_that_value():
    text = '{\n  // mine\n  "a": "old", // keep this\n  "b": [1, 2]\n}\n'
    doc = JsonText(text, "jsonc")
    doc.set(("a",), "new")
    assert doc.text == text.replace('"old"', '"new"')
    doc.set(("b",), {"x": 1})
    assert json5.loads(doc.text)["b"] == {"x": 1} and "// keep this" in doc.text


def test_duplicate_keys_edit_the_one_in_force():
    doc = JsonText('{"a": 1, "a": 2}', "json")
    doc.set(("a",), 3)
    assert doc.text == '{"a": 1, "a": 3}' and json.loads(doc.text)["a"] == 3


def test_setting_below_a_non_object_is_refused():
    with pytest.raises(UnsupportedEdit):
        load("json", '{"env": "oops"}').set(("env", "X"), "y")


def test_top_level_must_be_an_object():
    with pytest.raises(ConfigSyntaxError):
        load("json", "[1, 2]")


# ------------------------------------------------------------------------------ TOML


def test_toml_new_table_goes_to_the_end_and_comes_out_exactly():
    text = ('# c\nmodel = "o3"  # m\n\n[a.b]\nx = 1\n\n# about c\n[c]\ny = 2\n')
    doc = load("toml", text)
    doc.set(("model_provider",), "openrouter")
    doc.set(("a", "new", "name"), "N")
    doc.set(("a", "new", "auth", "args"), ["-c", "x"])
    out = doc.text()
    assert out.endswith('[a.new]\nname = "N"\n\n[a.new.auth]\nargs = ["-c", "x"]\n')
    assert "# about c\n[c]" in out
    assert tomllib.loads(out)["a"]["new"]["auth"]["args"] == ["-c", "x"]
    doc.delete(("a", "new", "auth", "args"))
    doc.delete(("a", "new", "auth"))
    doc.delete(("a", "new", "name"))
    doc.delete(("a", "new"))
    doc.delete(("model_provider",))
    assert doc.text() == text


def test_toml_refuses_invalid_and_keeps_comments_on_changed_values():
    with pytest.raises(ConfigSyntaxError):
        load("toml", "a = 1\na = 2\n")
    doc = load("toml", 'model = "o3"  # default\n')
    doc.set(("model",), "openai/o3")
    assert doc.text() == 'model = "openai/o3"  # default\n'


# ------------------------------------------------------------------------------ YAML


@pytest.mark.parametrize("text", [
    "models:\n- name: a\n  x: 1\nother: 2\n",
    "# top\nmodels:\n    - name: a   # first\n      roles:\n        - chat\n\n    # b\n"
    "    - name: b\n\nctx: 1\n",
    "models:\n",
    "",
])
def test_yaml_list_entries_are_spliced_in_and_out(text):
    doc = load("yaml", text)
    entry = {"name": "capit", "apiKey": "sk-or-v1-x", "apiBase": "http://127.0.0.1:1/api/v1"}
    doc.set(("models", Item("name", "capit")), entry)
    data = yaml.safe_load(doc.text())
    assert data["models"][-1] == entry
    doc.set(("models", Item("name", "capit")), {**entry, "apiKey": "other"})
    assert yaml.safe_load(doc.text())["models"][-1]["apiKey"] == "other"
    doc.delete(("models", Item("name", "capit")))
    if text in ("", ):
        doc.delete(("models",))
    assert doc.text() == text


@pytest.mark.parametrize("value", ["yes", "no", "1.0", "0x1", "a: b", "#x", "", "null", "~",
                                   "true", "${{ secrets.X }}", "it's", "ends:", "- x", "é"])
def test_yaml_scalars_stay_strings(value):
    doc = load("yaml", "a: 1\n")
    doc.set(("k",), value)
    assert yaml.safe_load(doc.text())["k"] == value
    doc2 = load("yaml", "k: old  # c\n")
    doc2.set(("k",), value)
    assert yaml.safe_load(doc2.text())["k"] == value and doc2.text().endswith("  # c\n")


@pytest.mark.parametrize("text, path", [
    ("{a: 1}\n", ("b",)),
    ("k: |\n  block\n", ("k",)),
    ("k: [a, b]\n", ("k", Prefixed("c="))),
    ("k:\n  nested: 1\n", ("k",)),
])
def test_yaml_edits_it_cannot_make_safely_are_refused(text, path):
    with pytest.raises(UnsupportedEdit):
        load("yaml", text).set(path, "v")


def test_yaml_syntax_errors_and_non_mappings():
    for text in ("a: [1\n", "- a\n- b\n", "a: 1\na: 2\n"):
        with pytest.raises(ConfigSyntaxError):
            load("yaml", text)


# ------------------------------------------------------------------------------ dotenv etc.


DOTENV = ('# c\nA=1\nexport B="two words"\nC=\'single $x\'  # note\nD="multi\nline"\n'
          "E=plain # comment\nA=2\n")


def test_dotenv_reads_like_python_dotenv():
    doc = load("dotenv", DOTENV)
    assert doc.data() == dotenv_values(stream=io.StringIO(DOTENV))


def test_dotenv_set_replaces_the_assignment_in_force_and_delete_undoes_an_append():
    doc = load("dotenv", DOTENV)
    doc.set(("A",), "new value")
    assert dotenv_values(stream=io.StringIO(doc.text()))["A"] == "new value"
    assert doc.text().startswith("# c\nA=1\n")
    doc = load("dotenv", DOTENV)
    doc.set(("OPENROUTER_API_KEY",), "sk-or-v1-x")
    assert doc.text() == DOTENV + "OPENROUTER_API_KEY=sk-or-v1-x\n"
    doc.delete(("OPENROUTER_API_KEY",))
    assert doc.text() == DOTENV
    doc = load("dotenv", "C='x'\n")
    doc.set(("C",), "it's")
    assert dotenv_values(stream=io.StringIO(doc.text()))["C"] == "it's"


def test_unterminated_dotenv_quote_is_a_syntax_error():
    with pytest.raises(ConfigSyntaxError):
        load("dotenv", 'A="open\n')


def test_rc_blocks():
    text = "provider add x\n"
    doc = load("rcblock", text)
    doc.set(("openrouter",), "provider add openrouter --api-key 'k'")
    assert doc.text() == (text + "# >>> capit openrouter >>>\nprovider add openrouter "
                          "--api-key 'k'\n# <<< capit openrouter <<<\n")
    assert doc.get(("openrouter",)) == "provider add openrouter --api-key 'k'"
    doc.delete(("openrouter",))
    assert doc.text() == text
    with pytest.raises(ConfigSyntaxError):
        load("rcblock", "# >>> capit a >>>\nx\n")


def test_masking_hides_keys_but_not_words():
    text = ('+ "ANTHROPIC_AUTH_TOKEN": "sk-or-v1-' + "ab" * 32 + '"\n'
            '- "OTHER": "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"\n'
            '  "model": "claude-sonnet-4-5-20250929", "hooks": "npx prettier --write"\n')
    masked = mask_text(text, ("my-own-secret-value",))
    assert "ab" * 8 not in masked and "sk-or-v1-…abab" in masked
    assert "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv" not in masked
    assert "claude-sonnet-4-5-20250929" in masked and "npx prettier --write" in masked
    assert mask_text("x my-own-secret-value y", ("my-own-secret-value",)) == "x …alue y"
