"""Validate HTTP requests and responses against OpenRouter's official OpenAPI document.

The document is not part of the repo. It is looked up at
``$CAPIT_SPECS_DIR/openrouter-openapi.yaml``, else at
``<repo>/../shared/specs/openrouter-openapi.yaml``; tests that need it skip
when it is absent::

    from openapi_contract import get_doc, require_spec, make_request_validator

    def test_something(sandbox):
        doc = get_doc()                     # skips the test if the spec is absent
        sandbox.request_validator = validator = make_request_validator(doc)
        ...
        assert validator.violations == []
        assert doc.validate_response("GET", "/api/v1/keys", 200, body) == []

Requests are checked STRICTLY: object schemas of request bodies get
``unevaluatedProperties: false`` (the composition-safe form of
``additionalProperties: false``), unknown query parameters are violations, and
the path must match a path template once the server prefix (``/api/v1``) is
stripped. Responses are checked as documented (status must be listed for the
operation; no extra strictness).

The YAML (1.3 MB) is parsed once per process.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SPEC_NAME = "openrouter-openapi.yaml"
REPO = Path(__file__).resolve().parent.parent
_DOC_URI = "urn:capit:openrouter-openapi"
_STRICT_URI = "urn:capit:openrouter-openapi-strict"


# ----------------------------------------------------------------- location


def spec_path() -> Path:
    """Where the OpenRouter document is expected (it may not exist)."""
    specs_dir = os.environ.get("CAPIT_SPECS_DIR")
    if specs_dir:
        return Path(specs_dir) / SPEC_NAME
    return REPO.parent / "shared" / "specs" / SPEC_NAME


def spec_available() -> bool:
    return spec_path().is_file()


def require_spec() -> Path:
    """The spec's path, or skip the calling test (module level works too)."""
    import pytest

    path = spec_path()
    if not path.is_file():
        pytest.skip(f"OpenRouter OpenAPI document not found at {path}", allow_module_level=True)
    return path


def _skip_marker() -> Any:
    import pytest

    return pytest.mark.skipif(
        not spec_available(), reason=f"OpenRouter OpenAPI document not found at {spec_path()}"
    )


#: ``@needs_spec`` on a test or ``pytestmark = needs_spec`` in a module.
needs_spec = _skip_marker()


def load_spec(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed YAML (cached: parse once per process). Treat it as read-only."""
    return _load_spec(str(Path(path or spec_path()).resolve()))


@functools.lru_cache(maxsize=4)
def _load_spec(path: str) -> dict[str, Any]:
    if path.endswith(".json"):  # e.g. LiteLLM's document (JSON is not always valid YAML)
        import json

        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 - safe loader


@functools.lru_cache(maxsize=4)
def _doc_for(path: str) -> OpenAPIDoc:
    return OpenAPIDoc(path)


def get_doc(path: str | os.PathLike[str] | None = None) -> OpenAPIDoc:
    """The shared :class:`OpenAPIDoc` for ``path`` (default: :func:`spec_path`).

    Skips the calling test when the document is absent."""
    resolved = Path(path) if path is not None else require_spec()
    return _doc_for(str(resolved.resolve()))


# ---------------------------------------------------------- format checking

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _format_checker() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(re.sub(r"[Zz]$", "+00:00", value).replace("t", "T"))
        return True

    @checker.checks("uuid", raises=ValueError)
    def _uuid(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if len(value) != 36:
            raise ValueError(f"{value!r} is not a hyphenated UUID")
        uuid.UUID(value)
        return True

    return checker


# ------------------------------------------------------------ strictness


_COMPOSITION = ("allOf", "anyOf", "oneOf")
_OPEN_KEYWORDS = ("additionalProperties", "unevaluatedProperties", "patternProperties")


class _Strictifier:
    """Adds ``unevaluatedProperties: false`` at every *use site* of a closed object
    schema (never inside composition members or at component roots, so allOf /
    anyOf / oneOf keep working: the use site sees all evaluated properties)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._kind: dict[int, str] = {}
        self._busy: set[int] = set()

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return None
        node: Any = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def kind(self, schema: Any) -> str:
        """'closed' (declares properties, nothing open), 'open' or 'none'."""
        if not isinstance(schema, dict):
            return "none"
        key = id(schema)
        if key in self._kind:
            return self._kind[key]
        if key in self._busy:
            return "none"
        self._busy.add(key)
        try:
            result = self._compute_kind(schema)
        finally:
            self._busy.discard(key)
        self._kind[key] = result
        return result

    def _compute_kind(self, schema: dict[str, Any]) -> str:
        if any(k in schema for k in _OPEN_KEYWORDS):
            return "open"
        kinds = []
        if schema.get("properties"):
            kinds.append("closed")
        if "$ref" in schema:
            kinds.append(self.kind(self._resolve(schema["$ref"])))
        for keyword in _COMPOSITION:
            for member in schema.get(keyword, []) or []:
                kinds.append(self.kind(member))
        types = schema.get("type")
        types = types if isinstance(types, list) else [types]
        if "object" in types and not kinds:
            return "open"  # a free-form object
        if "open" in kinds:
            return "open"
        return "closed" if "closed" in kinds else "none"

    def _children(self, schema: dict[str, Any]) -> Iterator[tuple[Any, bool]]:
        """(subschema, is_use_site)."""
        for keyword in ("properties", "patternProperties", "$defs", "dependentSchemas"):
            mapping = schema.get(keyword)
            if isinstance(mapping, dict):
                for sub in mapping.values():
                    yield sub, keyword != "$defs"
        for keyword in (
            "items",
            "additionalProperties",
            "contains",
            "not",
            "then",
            "else",
            "if",
            "propertyNames",
            "unevaluatedItems",
        ):
            sub = schema.get(keyword)
            if isinstance(sub, dict):
                yield sub, True
        for sub in schema.get("prefixItems", []) or []:
            yield sub, True
        for keyword in _COMPOSITION:
            for sub in schema.get(keyword, []) or []:
                yield sub, False

    def walk(self, schema: Any, use_site: bool, apply: bool) -> None:
        """Visit every subschema; with ``apply`` add the constraint at closed use sites
        (a first pass without ``apply`` computes every kind on the untouched document)."""
        stack = [(schema, use_site)]
        seen: set[int] = set()
        while stack:
            node, is_use = stack.pop()
            if not isinstance(node, dict):
                continue
            kind = self.kind(node)
            if apply and is_use and kind == "closed":
                node["unevaluatedProperties"] = False
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.extend(self._children(node))


@functools.lru_cache(maxsize=4)
def _strict_copy(path: str) -> dict[str, Any]:
    doc = copy.deepcopy(load_spec(path))
    strict = _Strictifier(doc)
    roots: list[tuple[Any, bool]] = [
        (schema, False) for schema in doc.get("components", {}).get("schemas", {}).values()
    ]
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody") or {}
            for media in (body.get("content") or {}).values():
                if isinstance(media, dict) and isinstance(media.get("schema"), dict):
                    roots.append((media["schema"], True))
    # Every kind is computed on the untouched copy before anything is changed.
    for apply in (False, True):
        for schema, use_site in roots:
            strict.walk(schema, use_site, apply)
    return doc


# ------------------------------------------------------------------ document


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _errors(validator: Any, instance: object, where: str) -> list[str]:
    out = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        location = "/".join(str(p) for p in error.absolute_path) or "<root>"
        out.append(f"{where}: {location}: {error.message}")
    return out


_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenAPIDoc:
    """One OpenAPI 3.1 document with request / response validation helpers."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = str(Path(path or spec_path()).resolve())
        self.doc = load_spec(self.path)
        server = (self.doc.get("servers") or [{"url": ""}])[0]["url"]
        self.prefix = urlsplit(server).path.rstrip("/")  # "/api/v1"
        self._templates = self._compile_paths()
        self._validators: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------- paths
    def _compile_paths(self) -> list[tuple[re.Pattern[str], str, int]]:
        compiled = []
        for template in self.doc.get("paths", {}):
            parts = re.split(r"(\{[^}/]+\})", template)
            regex = "".join(
                f"(?P<{p[1:-1].replace('-', '_')}>[^/]+)" if p.startswith("{") else re.escape(p)
                for p in parts
            )
            compiled.append((re.compile(f"^{regex}$"), template, template.count("{")))
        compiled.sort(key=lambda item: item[2])  # literal segments win over templates
        return compiled

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """(template, path params) for a request path such as ``/api/v1/keys/abc``."""
        path = urlsplit(path).path
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return None
            path = path[len(self.prefix) :] or "/"
        for regex, template, _ in self._templates:
            found = regex.match(path)
            if found:
                return template, found.groupdict()
        return None

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        found = self.match(path)
        if found is None:
            return None
        template, _ = found
        op = self.doc["paths"][template].get(method.lower())
        return (template, op) if isinstance(op, dict) else None

    # --------------------------------------------------------- validators
    def _validator(self, pointer: str, strict: bool) -> Any:
        key = (pointer, "strict" if strict else "plain")
        with self._lock:
            if key not in self._validators:
                from jsonschema import Draft202012Validator
                from referencing import Registry, Resource
                from referencing.jsonschema import DRAFT202012

                contents = _strict_copy(self.path) if strict else self.doc
                uri = _STRICT_URI if strict else _DOC_URI
                resource = Resource.from_contents(contents, default_specification=DRAFT202012)
                registry = Registry().with_resource(uri, resource)
                self._validators[key] = Draft202012Validator(
                    {"$ref": uri + pointer},
                    registry=registry,
                    format_checker=_format_checker(),
                )
            return self._validators[key]

    def validate_component(self, name: str, instance: object) -> list[str]:
        """Validate against ``#/components/schemas/<name>`` (not strict)."""
        if name not in self.doc.get("components", {}).get("schemas", {}):
            return [f"no component schema {name!r}"]
        validator = self._validator(_pointer("components", "schemas", name), strict=False)
        return _errors(validator, instance, name)

    # ------------------------------------------------------------ requests
    def validate_request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: object | None = None,
    ) -> list[str]:
        """Violations of a request (STRICT). ``query`` maps names to a value or a
        list of values (as ``parse_qs`` gives); ``body`` is the decoded JSON or None."""
        method = method.upper()
        found = self.match(path)
        if found is None:
            return [f"{method} {path}: path matches no path of the document"]
        template, path_params = found
        item = self.doc["paths"][template]
        op = item.get(method.lower())
        where = f"{method} {template}"
        if not isinstance(op, dict):
            allowed = [m.upper() for m in _HTTP_METHODS if m in item]
            return [f"{where}: method not documented (documented: {', '.join(allowed)})"]

        violations: list[str] = []
        parameters = list(item.get("parameters", []) or []) + list(op.get("parameters", []) or [])
        by_location: dict[str, dict[str, dict[str, Any]]] = {}
        for param in parameters:
            if "$ref" in param:
                param = self._resolve(param["$ref"])
            by_location.setdefault(param.get("in", ""), {})[param["name"]] = param

        for name, value in path_params.items():
            param = by_location.get("path", {}).get(name)
            if param is not None:
                violations += self._check_param(where, param, [value])

        query = dict(query or {})
        documented = by_location.get("query", {})
        for name in sorted(query):
            if name not in documented:
                violations.append(f"{where}: unknown query parameter {name!r}")
        for name, param in documented.items():
            if name not in query:
                if param.get("required"):
                    violations.append(f"{where}: missing required query parameter {name!r}")
                continue
            values = query[name]
            values = values if isinstance(values, list) else [values]
            violations += self._check_param(where, param, [str(v) for v in values])

        request_body = op.get("requestBody")
        if request_body is None:
            if body is not None:
                violations.append(f"{where}: operation takes no request body")
            return violations
        if "$ref" in request_body:
            request_body = self._resolve(request_body["$ref"])
        if body is None:
            if request_body.get("required"):
                violations.append(f"{where}: request body is required")
            return violations
        content = request_body.get("content", {})
        if "application/json" not in content:
            violations.append(f"{where}: no application/json request body documented")
            return violations
        pointer = _pointer(
            "paths",
            template,
            method.lower(),
            "requestBody",
            "content",
            "application/json",
            "schema",
        )
        violations += _errors(self._validator(pointer, strict=True), body, f"{where} body")
        return violations

    def _resolve(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _check_param(self, where: str, param: dict[str, Any], values: list[str]) -> list[str]:
        name = param["name"]
        schema = param.get("schema", {})
        if "$ref" in schema:
            schema = self._resolve(schema["$ref"])
        types = schema.get("type", [])
        types = types if isinstance(types, list) else [types]
        if "array" not in types and len(values) > 1:
            return [f"{where}: query parameter {name!r} given {len(values)} times"]
        problems: list[str] = []
        for text in values:
            if schema.get("x-openrouter-type") == "boolean" and text not in ("true", "false"):
                problems.append(f"{where}: parameter {name!r}={text!r} is not 'true'/'false'")
                continue
            value: object = text
            if "integer" in types and re.fullmatch(r"-?\d+", text):
                value = int(text)
            elif "number" in types and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text):
                value = float(text)
            elif "boolean" in types and text in ("true", "false"):
                value = text == "true"
            from jsonschema import Draft202012Validator

            validator = Draft202012Validator(schema, format_checker=_format_checker())
            problems += _errors(validator, value, f"{where} parameter {name!r}")
        return problems

    # ----------------------------------------------------------- responses
    def validate_response(
        self,
        method: str,
        path: str,
        status: int,
        body: object,
        content_type: str = "application/json",
    ) -> list[str]:
        """Violations of a response. For ``text/event-stream`` pass one parsed
        event, ``{"data": <decoded JSON>}`` (plus ``"event": name`` for Anthropic)."""
        method = method.upper()
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in the document"]
        template, op = found
        where = f"{method} {template} -> {status}"
        responses = op.get("responses", {})
        key = str(status)
        if key not in responses:
            key = f"{str(status)[0]}XX"
        if key not in responses:
            key = "default"
        if key not in responses:
            return [
                f"{where}: status {status} is not documented (documented: "
                f"{', '.join(sorted(responses))})"
            ]
        response = responses[key]
        if "$ref" in response:
            response = self._resolve(response["$ref"])
        content = response.get("content") or {}
        media_type = content_type.split(";")[0].strip().lower()
        if not content:
            return [] if body in (None, b"", "") else [f"{where}: no body documented"]
        if media_type not in content:
            return [
                f"{where}: content type {media_type!r} not documented "
                f"(documented: {', '.join(content)})"
            ]
        if "schema" not in content[media_type]:
            return []
        pointer = _pointer(
            "paths", template, method.lower(), "responses", key, "content", media_type, "schema"
        )
        return _errors(self._validator(pointer, strict=False), body, where)


# ------------------------------------------------------ sandbox integration


class RecordingValidator:
    """A ``Sandbox.request_validator``: returns the violations as one message
    (the sandbox then answers 400) and keeps every one in ``violations``."""

    def __init__(self, doc: OpenAPIDoc) -> None:
        self.doc = doc
        self.violations: list[str] = []
        self.checked = 0
        self._lock = threading.Lock()

    def __call__(
        self, method: str, path: str, query: dict[str, list[str]], body: object
    ) -> str | None:
        problems = self.doc.validate_request(method, path, query, body)
        with self._lock:
            self.checked += 1
            self.violations.extend(problems)
        return "; ".join(problems) if problems else None


def make_request_validator(doc: OpenAPIDoc) -> RecordingValidator:
    return RecordingValidator(doc)


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Split an SSE body into events ``{"event": name?, "data": str}`` (comments dropped)."""
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        event: dict[str, Any] = {}
        data = []
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event["event"] = value
        if data:
            event["data"] = "\n".join(data)
            events.append(event)
    return events


__all__ = [
    "OpenAPIDoc",
    "RecordingValidator",
    "get_doc",
    "load_spec",
    "make_request_validator",
    "needs_spec",
    "parse_sse",
    "require_spec",
    "spec_available",
    "spec_path",
]
