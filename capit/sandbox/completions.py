"""Canned completion bodies for the sandbox: OpenAI chat and Anthropic messages.

Shapes follow OpenRouter's OpenAPI document (``ChatResult``,
``ChatStreamChunk``, ``MessagesResult``, ``MessagesStreamEvents``).
"""

from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal
from typing import Any

from capit.sandbox.state import ApiError

REPLY = "Hello from the capit sandbox. This reply was billed to your key."
DEFAULT_MODEL = "sandbox/echo"


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def estimate_tokens(messages: list[Any], system: object = None) -> int:
    """A rough prompt size: one token per four characters, at least one."""
    chars = len(_text_of(system))
    for message in messages:
        if isinstance(message, dict):
            chars += len(_text_of(message.get("content")))
    return max(1, chars // 4)


COMPLETION_TOKENS = max(1, len(REPLY) // 4)


def _bad(message: str, path: str) -> ApiError:
    errors = [{"path": [path], "message": message}]
    return ApiError(400, "Invalid request parameters", {"errors": errors})


def check_chat_request(body: object) -> dict[str, Any]:
    """Minimal validation of a /chat/completions body; ApiError 400 otherwise."""
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "Invalid request parameters",
            {"errors": [{"path": [], "message": "Request body must be a JSON object"}]},
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty array", "messages")
    if "model" in body and not isinstance(body["model"], str):
        raise _bad("Expected string", "model")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _bad("Expected boolean", "stream")
    return body


def check_messages_request(body: object) -> dict[str, Any]:
    """Minimal validation of a /messages body; ApiError 400 otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    if not isinstance(body.get("model"), str):
        raise ApiError(400, "model: Field required (string)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: must be a non-empty array")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "stream: Expected boolean")
    return body


# ------------------------------------------------------------------ chat


def _chat_usage(prompt_tokens: int, cost: Decimal) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": prompt_tokens + COMPLETION_TOKENS,
        "cost": float(cost),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def chat_result(body: dict[str, Any], cost: Decimal) -> dict[str, Any]:
    return {
        "id": "gen-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or DEFAULT_MODEL,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": REPLY, "refusal": None},
            }
        ],
        "usage": _chat_usage(estimate_tokens(body["messages"]), cost),
    }


def _sse(data: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    middle = len(words) // 2
    return [" ".join(words[:middle]) + " ", " ".join(words[middle:])]


def chat_stream(body: dict[str, Any], cost: Decimal) -> bytes:
    """SSE body: chat.completion.chunk events, a usage chunk, then ``[DONE]``."""
    base = {
        "id": "gen-" + secrets.token_hex(12),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or DEFAULT_MODEL,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": piece}) for piece in _pieces(REPLY)]
    out.append(chunk({}, "stop"))
    usage = _chat_usage(estimate_tokens(body["messages"]), cost)
    out.append(_sse({**base, "choices": [], "usage": usage}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


# -------------------------------------------------------------- messages


def _anthropic_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "output_tokens_details": None,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": None,
        "inference_geo": None,
        "server_tool_use": None,
        "service_tier": "standard",
    }


def _message(body: dict[str, Any], content: list[Any], stop: str | None) -> dict[str, Any]:
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "container": None,
        "content": content,
        "model": body["model"],
        "stop_reason": stop,
        "stop_details": None,
        "stop_sequence": None,
    }


def messages_result(body: dict[str, Any], cost: Decimal) -> dict[str, Any]:
    result = _message(body, [{"type": "text", "text": REPLY, "citations": None}], "end_turn")
    usage = _anthropic_usage(
        estimate_tokens(body["messages"], body.get("system")), COMPLETION_TOKENS
    )
    result["usage"] = {**usage, "cost": float(cost), "is_byok": False}
    return result


def messages_stream(body: dict[str, Any], cost: Decimal) -> bytes:
    """SSE body: message_start, content_block_*, message_delta, message_stop."""
    input_tokens = estimate_tokens(body["messages"], body.get("system"))
    start = _message(body, [], None)
    start["usage"] = _anthropic_usage(input_tokens, 1)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": "", "citations": None},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for piece in _pieces(REPLY):
        events.append(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "container": None,
                    "stop_details": None,
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                },
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": COMPLETION_TOKENS,
                    "output_tokens_details": None,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "server_tool_use": None,
                    "cost": float(cost),
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(_sse(data, name) for name, data in events)
