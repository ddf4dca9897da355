"""Read and tamper with JWTs (no signing: the forgeries must fail verification)."""

from __future__ import annotations

import base64
import json
from typing import Any


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(token: str) -> dict[str, Any]:
    return json.loads(_b64decode(token.split(".")[1]))


def header(token: str) -> dict[str, Any]:
    return json.loads(_b64decode(token.split(".")[0]))


def with_flipped_signature(token: str) -> str:
    """Same header and claims; one byte of the signature changed."""
    head, body, sig = token.split(".")
    raw = bytearray(_b64decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64encode(bytes(raw))}"


def with_claims(token: str, **changes: Any) -> str:
    """Claims edited, original signature kept."""
    head, _, sig = token.split(".")
    body = claims(token)
    body.update(changes)
    return f"{head}.{_b64encode(json.dumps(body).encode())}.{sig}"


def unsigned(token: str) -> str:
    """The same claims under `alg: none` with an empty signature."""
    body = token.split(".")[1]
    head = _b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{body}."
