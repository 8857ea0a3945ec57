"""What the dynamic providers share about the inputs the engine sends them."""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc


def is_unknown(value: Any) -> bool:
    """True for a value the engine does not know yet (during preview), also inside a list."""
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return True
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False
