"""Every small grammar a user writes on the command line or in a pytest option, in one place:
``--gains stem=gain,...``, ``--param SEPARATOR.KEY=VALUE``, ``--strategy NAME:key=value,...``,
``--executor local|dask|dask:ADDRESS``, gates ``METRIC[:TARGET]:DB`` and comma lists.

Values are converted to the type the constructor annotates, read with
:func:`typing.get_origin` / :func:`typing.get_args` (never by searching the annotation's
text): ``int``, ``float`` (NaN and Inf refused), ``bool`` (``true``/``false`` only), ``str``,
``X | None`` (``none`` gives None), ``tuple[...]`` / ``list[...]`` written with ``/``
(``3000/300``), and ``Literal[...]``. A bad value is a one-line error naming the parameter and
the accepted form. An unannotated parameter takes JSON where the text parses, else the text.
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from .errors import DemixbenchError


def split_list(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None stays None (the option was not given)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_gains(text: str | None) -> dict[str, float]:
    """``"vocals=2,drums=1"`` -> ``{"vocals": 2.0, "drums": 1.0}`` (finite, >= 0)."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        try:
            gain = float(v)
        except ValueError:
            gain = math.nan
        if not sep or not k.strip() or (math.isnan(gain) and v.strip().lower() != "nan"):
            raise DemixbenchError(f"--gains {text!r}: expected stem=gain pairs, e.g. "
                                  "vocals=2,drums=1")
        if not math.isfinite(gain) or gain < 0:
            raise DemixbenchError(f"--gains {text!r}: the gain of {k.strip()} must be a finite "
                                  "number >= 0")
        out[k.strip()] = gain
    return out


def parse_params(items: list[str] | None) -> dict[str, dict[str, str]]:
    """``["hpss_repet.max_frames=50", ...]`` -> ``{"hpss_repet": {"max_frames": "50"}}``: the
    values stay text until :func:`convert_params` reads them with the constructor's types."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        name, dot, param = key.partition(".")
        if not (sep and dot and name and param):
            raise DemixbenchError(f"--param {item!r}: expected SEPARATOR.PARAMETER=VALUE, e.g. "
                                  "hpss_repet.max_frames=50")
        out.setdefault(name, {})[param] = text
    return out


# -- values typed from the constructor's annotations ---------------------------------------------
_NONE = type(None)


def _form(hint: Any) -> str:
    """How a value of ``hint`` is written, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "text"
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is _NONE else _form(a) for a in args)
    if origin in (tuple, list):
        inner = args[0] if args else str
        count = (f"{len(args)} values" if origin is tuple and args and args[-1] is not Ellipsis
                 else "values")
        return f"{count} separated by / ({_form(inner)} each), e.g. 0.5/1"
    return "a value"


def _convert(hint: Any, value: Any) -> Any:
    """``value`` (text or already typed) as ``hint``; raises ValueError when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if origin in (typing.Union, types.UnionType):
        if _NONE in args and (value is None or (isinstance(value, str)
                                                and value.lower() in ("none", "null"))):
            return None
        for a in (a for a in args if a is not _NONE):
            try:
                return _convert(a, value)
            except ValueError:
                continue
        raise ValueError(value)
    if origin is typing.Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ValueError(value)
    if origin in (tuple, list):
        items = value.split("/") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(value)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            kinds = [args[0]] * len(items)
        elif origin is tuple and args:
            if len(items) != len(args):
                raise ValueError(value)
            kinds = list(args)
        else:
            kinds = [args[0] if args else Any] * len(items)
        out = [_convert(k, v) for k, v in zip(kinds, items)]
        return tuple(out) if origin is tuple else out
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(value)
    if hint is int:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                x = float(value)  # 1e9 is an integer written as a number
                if not (math.isfinite(x) and x.is_integer()):
                    raise
                return int(x)
        raise ValueError(value)
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(value)
        x = float(value) if isinstance(value, (int, float, str)) else math.nan
        if not math.isfinite(x):
            raise ValueError(value)
        return x
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    return value  # a type we do not know how to read: passed on as given


def constructor_hints(cls: type) -> dict[str, Any]:
    """``{parameter: annotation}`` of ``cls.__init__`` (``inspect.Parameter.empty`` where a
    parameter is unannotated)."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that cannot be resolved: treat as unannotated
        hints = {}
    params = inspect.signature(cls.__init__).parameters
    return {k: hints.get(k, p.annotation if not isinstance(p.annotation, str) else
                         inspect.Parameter.empty)
            for k, p in params.items() if k != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def convert_params(owner: str, cls: type, values: dict[str, Any], what: str = "--param",
                   skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``values`` converted to the types ``cls``'s constructor annotates; an unknown parameter
    or a value of the wrong form is a one-line error naming it and the accepted form."""
    hints = constructor_hints(cls)
    join = ":" if what == "--strategy" else "."
    accepts_any = any(p.kind == p.VAR_KEYWORD
                      for p in inspect.signature(cls.__init__).parameters.values())
    out = {}
    for key, value in values.items():
        if key not in hints:
            if accepts_any:
                out[key] = _convert(Any, value)
                continue
            raise DemixbenchError(f"{what} {owner}{join}{key}: {owner} has no option {key!r}; its "
                                  f"options: {', '.join(k for k in hints if k not in skip)}")
        try:
            out[key] = _convert(hints[key], value)
        except (ValueError, TypeError):
            raise DemixbenchError(f"{what} {owner}{join}{key}={value}: expected "
                                  f"{_form(hints[key])}") from None
    return out


# -- strategies, executors, gates --------------------------------------------------------------
def parse_strategy_text(spec: str) -> tuple[str, dict[str, str]]:
    """``"progressive:target=vocals,steps=5"`` -> ``("progressive", {"target": "vocals",
    "steps": "5"})``: values as text, converted by the strategy's constructor types."""
    name, _, rest = spec.partition(":")
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, text = part.partition("=")
        if not sep or not key.strip():
            raise DemixbenchError(f"--strategy {spec}: expected key=value, got {part!r}")
        out[key.strip()] = text.strip()
    return name.strip(), out


def parse_executor(text: str | None) -> tuple[str, str | None]:
    """``local`` | ``dask`` | ``dask:ADDRESS`` -> (kind, address)."""
    text = (text or "local").strip()
    kind, _, address = text.partition(":")
    if kind not in ("local", "dask") or (kind == "local" and address):
        raise DemixbenchError(f"--executor {text}: use local, dask (a cluster on this machine) or "
                              "dask:tcp://HOST:PORT (an existing scheduler)")
    return kind, address or None


def check_workers(workers: int | None) -> int | None:
    """``--workers``: None (one per core) or a count of 1 or more."""
    if workers is not None and workers < 1:
        raise DemixbenchError(f"--workers {workers}: give 1 or more (or leave it out: one "
                              "worker per core)")
    return workers


@dataclass(frozen=True)
class Gate:
    """``METRIC[:TARGET]:DB``: fail when the metric's median paired change drops by more
    than DB (for TARGET only, when given)."""

    metric: str
    target: str | None
    db: float


def parse_gate(text: str) -> Gate:
    """``METRIC[:TARGET]:DB``, e.g. ``usdr:0.5`` or ``sdr:vocals:1`` (the metric is checked
    against the registry by the caller)."""
    parts = text.split(":")
    try:
        db = float(parts[-1])
    except ValueError:
        db = math.nan
    if len(parts) not in (2, 3) or not parts[0].strip() or not math.isfinite(db) or db < 0:
        raise DemixbenchError(f"{text!r}: expected METRIC[:TARGET]:DB with DB >= 0, e.g. usdr:0.5 "
                              "or sdr:vocals:1")
    return Gate(parts[0].strip().lower(), parts[1].strip() if len(parts) == 3 else None, db)


def parse_gates(text: str | None) -> list[Gate]:
    """A comma list of gates (``sdr:0.5,usdr:vocals:1``)."""
    return [parse_gate(p.strip()) for p in (text or "").split(",") if p.strip()]
