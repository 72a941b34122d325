"""The tidy result rows as CSV, strict JSON or an aligned text table (``demixbench results``).

The standard library's ``csv`` and ``json`` write them; a non-finite value is an empty CSV cell
and a JSON ``null`` with its reason, so both files stay readable by any tool."""

from __future__ import annotations

import csv
import json
import math

from ..runs.store import finite_json


def write_rows(tidy: list[dict], cols: list[str], fmt: str, out) -> None:
    """Write ``tidy`` rows (dicts with ``cols``) to the text stream ``out`` as ``fmt``."""
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for t in tidy:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in t.items()})
    elif fmt == "json":  # strict JSON: a non-finite value is null with its reason
        for t in tidy:
            v = t["value"]
            if isinstance(v, float) and math.isinf(v) and not t["nan_reason"]:
                t["nan_reason"] = f"{'+' if v > 0 else '-'}inf"
        json.dump(finite_json(tidy), out, indent=1, allow_nan=False)
        out.write("\n")
    else:
        widths = {c: max([len(c)] + [len(cell(t[c])) for t in tidy]) for c in cols}
        out.write("  ".join(c.ljust(widths[c]) for c in cols) + "\n")
        for t in tidy:
            out.write("  ".join(cell(t[c]).ljust(widths[c]) for c in cols) + "\n")


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)
