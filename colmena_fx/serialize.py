"""Bytes in and out for task inputs and values.

Pickle (protocol 5) first, for speed; dill when pickle cannot (lambdas, closures,
classes defined in `__main__`). A failure names the value's type and the fix.
"""

from __future__ import annotations

import pickle
from typing import Any

import dill

from colmena_fx.exceptions import SerializationError

_PICKLE = b"P"
_DILL = b"D"


def dumps(value: Any, what: str = "value") -> bytes:
    """Serialize `value`; `what` names it in the error ("argument 1 of simulate")."""
    try:
        return _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # pickle raises many types for unpicklable objects
        pass
    try:
        body: bytes = dill.dumps(value, protocol=pickle.HIGHEST_PROTOCOL, recurse=True)
        return _DILL + body
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize {what} of type {type(value).__name__}: {exc}. "
            f"Pass plain data (numbers, strings, lists, dicts, numpy arrays) or "
            f"objects that pickle can handle."
        ) from exc


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Inverse of `dumps`."""
    tag, body = data[:1], memoryview(data)[1:]
    try:
        if tag == _PICKLE:
            return pickle.loads(body)
        if tag == _DILL:
            return dill.loads(body)
    except Exception as exc:
        raise SerializationError(f"cannot deserialize a value: {exc}") from exc
    raise SerializationError(f"unknown serialization tag {tag!r}")


def encoded_size(size: int) -> int:
    """Bytes of `size` bytes once base64-encoded in 76-character lines.

    Globus Compute sends every argument and result that way, and its limits apply
    to what is sent.
    """
    encoded = (size + 2) // 3 * 4
    return encoded + encoded // 76
