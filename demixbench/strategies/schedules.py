"""β schedules for progressive inference: the weight of the previous estimate at step n = 1..N.

``mix_n = (1 - β_n) y + β_n x̂_{n-1}``: β = 0 re-separates the mixture, β = 1 re-separates the
previous estimate alone.
"""

from __future__ import annotations

import numpy as np

from ..errors import DemixbenchError

SCHEDULES = ("linear", "constant", "cosine", "geometric", "list")


def make_schedule(name: str, steps: int, value: float | None = None,
                  values: list[float] | None = None) -> np.ndarray:
    """β_1..β_N for ``steps`` = N.

    - ``linear``: β_n = n / N (the seed paper's);
    - ``constant``: β_n = ``value`` (default 0.5);
    - ``cosine``: β_n = (1 - cos(π n / N)) / 2, slow start and end;
    - ``geometric``: β_n = ``value`` ** (N - n) (default 0.5), doubling towards β_N = 1;
    - ``list``: the explicit ``values`` (N of them).
    """
    if steps < 1:
        raise DemixbenchError(f"progressive: steps must be >= 1, got {steps}")
    n = np.arange(1, steps + 1, dtype=float)
    if name == "linear":
        betas = n / steps
    elif name == "constant":
        betas = np.full(steps, 0.5 if value is None else float(value))
    elif name == "cosine":
        betas = (1 - np.cos(np.pi * n / steps)) / 2
    elif name == "geometric":
        ratio = 0.5 if value is None else float(value)
        if not 0 < ratio <= 1:
            raise DemixbenchError(f"progressive: geometric ratio must be in (0, 1], got {ratio}")
        betas = ratio ** (steps - n)
    elif name == "list":
        if not values or len(values) != steps:
            raise DemixbenchError(f"progressive: schedule=list needs {steps} values "
                                  f"(betas=0.2/0.4/...), got {values}")
        betas = np.asarray(values, dtype=float)
    else:
        raise DemixbenchError(f"progressive: unknown schedule {name!r}; use one of "
                              f"{', '.join(SCHEDULES)}")
    if np.any(betas < 0) or np.any(betas > 1):
        raise DemixbenchError(f"progressive: every beta must lie in [0, 1], got {betas.tolist()}")
    return betas
