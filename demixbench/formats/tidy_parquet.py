"""The tidy result rows as an Apache Parquet file (``demixbench results --format parquet``).

Written with pyarrow (the ``parquet`` extra), the reference Parquet implementation that pandas,
polars, DuckDB and Spark read; columns are typed (``value`` float64 with NaN kept, ``step``
int64, ``oracle`` bool), so a reader needs no parsing, unlike csv.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DemixbenchError

INSTALL_HINT = "writing Parquet needs pyarrow: pip install 'demixbench[parquet]' (or pyarrow)"

_TYPES = {"step": "int64", "value": "float64", "oracle": "bool_"}


def write_parquet(rows: list[dict], columns: list[str], path: str | Path) -> Path:
    """Write ``rows`` (dicts with ``columns``) to ``path``; returns the path written."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DemixbenchError(INSTALL_HINT) from None
    fields = [pa.field(c, getattr(pa, _TYPES.get(c, "string"))()) for c in columns]
    data = {c: [_cell(c, r.get(c)) for r in rows] for c in columns}
    table = pa.table(data, schema=pa.schema(fields))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _cell(column: str, value):
    if value is None:
        return None
    if column == "oracle":
        return bool(value)
    if column == "step":
        return int(value)
    if column == "value":
        return float(value)
    return str(value)
