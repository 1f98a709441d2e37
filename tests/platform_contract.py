"""Contract checks for the Unkey and LiteLLM shapes of the sandbox, against the official
OpenAPI documents in ``../shared/specs`` (or ``$CAPIT_SPECS_DIR``).

``attach(service, platform)`` installs a strict request validator on a mounted sandbox
service (``sandbox.unkey`` / ``sandbox.litellm``): every request capit sends there is
checked with :class:`openapi_contract.OpenAPIDoc` (unknown body fields and query
parameters are violations) and a violating request is answered 400, so capit's test
fails too.  ``Contract.finish()`` then asserts there were no violations and that every
answer the service gave validates against the same document: documented statuses by the
operation's response schema; Unkey's undocumented ones (412, 405) by the error component
of that status; LiteLLM's error envelope (undocumented: the generated document lists only
200 and 422) by the shape its ``ProxyException`` produces.  (Unkey's 400 schema cannot
be satisfied as written; see :func:`_unkey_bad_request`.)  Without the documents,
``attach`` returns a contract that checks nothing and the spec tests skip.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from openapi_contract import OpenAPIDoc, RecordingValidator, get_doc

REPO = Path(__file__).resolve().parent.parent
SPECS = {"unkey": "unkey-openapi.yaml", "litellm": "litellm-proxy-keys-openapi.json"}

#: Unkey error components for statuses its operations do not declare
UNKEY_ERROR_COMPONENTS = {
    400: "BadRequestErrorResponse", 401: "UnauthorizedErrorResponse",
    403: "ForbiddenErrorResponse", 404: "NotFoundErrorResponse", 409: "ConflictErrorResponse",
    410: "GoneErrorResponse", 412: "PreconditionFailedErrorResponse",
    422: "UnprocessableEntityErrorResponse", 429: "TooManyRequestsErrorResponse",
    500: "InternalServerErrorResponse", 503: "ServiceUnavailableErrorResponse",
}

#: routes the sandbox serves that the (key-management) documents do not describe
OUTSIDE_DOCUMENT = {"litellm": ("/chat/completions", "/v1/chat/completions")}

#: LiteLLM's ProxyException.to_dict(), as observed (shared/reference/unkey-litellm.md 2.1)
LITELLM_ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "additionalProperties": False,
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]},
                       "code": {"type": "string", "pattern": "^[0-9]{3}$"}},
    }},
}


def spec_file(platform: str) -> Path:
    specs_dir = os.environ.get("CAPIT_SPECS_DIR")
    base = Path(specs_dir) if specs_dir else REPO.parent / "shared" / "specs"
    return base / SPECS[platform]


def spec_present(platform: str) -> bool:
    return spec_file(platform).is_file()


def doc_for(platform: str) -> OpenAPIDoc:
    """The platform's document (skips the calling test when it is absent)."""
    import pytest

    path = spec_file(platform)
    if not path.is_file():
        pytest.skip(f"{platform} OpenAPI document not found at {path}")
    return get_doc(path)


def response_problems(doc: OpenAPIDoc, platform: str, method: str, path: str, status: int,
                      payload: object, content_type: str) -> list[str]:
    """Violations of one answer of the sandbox's ``platform`` service."""
    found = doc.operation(method, path)
    if found is None:
        return [f"{method} {path}: no such operation in the {platform} document"]
    _template, op = found
    if platform == "unkey" and status == 400:
        return _unkey_bad_request(doc, method, path, payload, content_type)
    documented = str(status) in op.get("responses", {})
    if documented:
        return doc.validate_response(method, path, status, payload, content_type)
    if platform == "unkey" and status in UNKEY_ERROR_COMPONENTS:
        return doc.validate_component(UNKEY_ERROR_COMPONENTS[status], payload)
    if platform == "litellm" and status >= 400:
        from jsonschema import Draft202012Validator

        return [f"{method} {path} -> {status}: {e.message}"
                for e in Draft202012Validator(LITELLM_ERROR).iter_errors(payload)]
    return [f"{method} {path} -> {status}: status not documented"]


def _unkey_bad_request(doc: OpenAPIDoc, method: str, path: str, payload: object,
                       content_type: str) -> list[str]:
    """Unkey's 400 schema cannot be satisfied as written: ``BadRequestErrorDetails`` is
    ``allOf: [BaseError, {required: [errors]}]`` and ``BaseError`` has
    ``additionalProperties: false``, so ``errors`` is both required and forbidden.  Check
    what is meant: the envelope without ``errors`` against the document (whose only
    complaint may then be the missing ``errors``), and each item of ``errors`` against
    ``ValidationError``."""
    if not (isinstance(payload, dict) and isinstance(payload.get("error"), dict)):
        return doc.validate_response(method, path, 400, payload, content_type)
    error = dict(payload["error"])
    items = error.pop("errors", None)
    if not isinstance(items, list):
        return [f"{method} {path} -> 400: error.errors must be an array"]
    problems = [p for p in doc.validate_response(method, path, 400, {**payload, "error": error},
                                                 content_type)
                if not p.endswith("error: 'errors' is a required property")]
    for item in items:
        problems += doc.validate_component("ValidationError", item)
    return problems


class Contract:
    """Strict request validation plus response validation of one mounted service."""

    def __init__(self, service: Any, platform: str, doc: OpenAPIDoc | None,
                 strict_requests: bool = True) -> None:
        self.service = service
        self.platform = platform
        self.doc = doc
        self.validator = None
        if doc is not None and strict_requests:
            self.validator = RecordingValidator(doc)
            service.request_validator = self._validate

    def _validate(self, method: str, path: str, query: dict[str, list[str]],
                  body: object) -> str | None:
        if path in OUTSIDE_DOCUMENT.get(self.platform, ()):
            return None  # the billed calls agents make: not in the key-management document
        assert self.validator is not None
        return self.validator(method, path, query, body)

    @property
    def active(self) -> bool:
        return self.doc is not None

    def response_violations(self) -> list[str]:
        if self.doc is None:
            return []
        problems: list[str] = []
        for ex in self.service.exchanges:
            if ex.payload is None or not ex.content_type.startswith(("application/json",
                                                                      "application/problem")):
                continue  # a canned non-JSON fault or a stream: nothing to check
            if self.doc.operation(ex.method, ex.path) is None:
                continue  # e.g. LiteLLM's billed /chat/completions: not a /key/* route
            problems += response_problems(self.doc, self.platform, ex.method, ex.path,
                                          ex.status, ex.payload, ex.content_type)
        return problems

    def finish(self) -> None:
        if self.validator is not None:
            assert self.validator.violations == [], \
                f"capit sent requests the {self.platform} OpenAPI document forbids"
        problems = self.response_violations()
        assert problems == [], \
            f"the sandbox answered outside the {self.platform} document: {problems}"


def attach(service: Any, platform: str, *, strict_requests: bool = True) -> Contract:
    """Check ``service`` against the platform's document; ``strict_requests=False`` for
    tests that send bad requests on purpose (only the answers are checked then)."""
    doc = get_doc(spec_file(platform)) if spec_present(platform) else None
    return Contract(service, platform, doc, strict_requests)
