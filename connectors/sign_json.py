"""JSON text as the platforms' own SDKs write it, for the values they sign.

Python writes the float 2.0 as `2.0`; the SDKs that sign JSON do not: Douyin's official Go SDK
(`encoding/json`) and PDD's Node SDK (`JSON.stringify`, and `String(value)` for a top-level
number) both write `2`. Both follow ECMAScript's Number-to-String rule: the shortest digits that
round-trip, positional notation for 1e-7 < |x| < 1e21, else `d.ddde+N` / `d.ddde-N`. Strings
keep non-ASCII characters as they are (Chinese unescaped) and escape control characters;
Go's encoder also always escapes U+2028 and U+2029 (`go_style=True`). HTML characters are
never escaped (the Douyin SDK turns that off; JavaScript never does it).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def js_number(value: float) -> str:
    """`value` as JavaScript's `String(value)` / Go's encoding/json write it."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)  # the value is 0.<text> x 10^point
    prefix = "-" if sign else ""
    if len(text) <= point <= 21:
        return prefix + text + "0" * (point - len(text))
    if 0 < point <= 21:
        return prefix + text[:point] + "." + text[point:]
    if -6 < point <= 0:
        return prefix + "0." + "0" * -point + text
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    shift = point - 1
    return f"{prefix}{mantissa}e{'+' if shift > 0 else '-'}{abs(shift)}"


def sdk_json(value: Any, *, sort_keys: bool = False, go_style: bool = False) -> str:
    """Compact JSON of `value` with the SDKs' number and string rules (see the module doc)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if go_style:
            text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return text
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        members = (
            f"{sdk_json(str(k), go_style=go_style)}:"
            f"{sdk_json(value[k], sort_keys=sort_keys, go_style=go_style)}"
            for k in keys
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        items = (sdk_json(v, sort_keys=sort_keys, go_style=go_style) for v in value)
        return "[" + ",".join(items) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON")
