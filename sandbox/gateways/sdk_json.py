"""The JSON text the platforms' SDKs sign (sandbox side; the connectors have their own).

Douyin's Go SDK and PDD's Node SDK write numbers the ECMAScript way: 2.0 is `2`, 0.5 is `0.5`,
1e-7 is `1e-7`, 1e21 is `1e+21` (shortest round-trip digits; positional between 1e-7 and 1e21).
Strings stay unescaped beyond what JSON requires (Chinese as is, no HTML escaping); Go's encoder
additionally escapes U+2028/U+2029 (`go=True`). Key order: as given, or sorted (`sort=True`,
Douyin's canonical form).
"""

from __future__ import annotations

import json
import math


def number_text(x: float) -> str:
    """ECMAScript Number::toString of a float, from Python's shortest repr."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    leading = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.lstrip("0").rstrip("0")
    n = len(whole) + int(exp or "0") - leading  # value = 0.digits * 10**n
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        body = (
            digits[0]
            + (f".{digits[1:]}" if k > 1 else "")
            + ("e+" if e > 0 else "e-")
            + str(abs(e))
        )
    return sign + body


def sdk_json(value: object, *, sort: bool = False, go: bool = False) -> str:
    def dump(v: object) -> str:
        if isinstance(v, bool) or v is None:
            return json.dumps(v)
        if isinstance(v, float):
            return number_text(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            s = json.dumps(v, ensure_ascii=False)
            return s.replace("\u2028", r"\u2028").replace("\u2029", r"\u2029") if go else s
        if isinstance(v, dict):
            items = sorted(v.items()) if sort else v.items()
            return "{" + ",".join(f"{dump(str(k))}:{dump(x)}" for k, x in items) + "}"
        if isinstance(v, list | tuple):
            return "[" + ",".join(dump(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as JSON")

    return dump(value)
