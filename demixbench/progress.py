"""Progress of a run: a tqdm bar (count, rate, ETA) when stderr is a terminal, one plain line
per unit otherwise (logs, CI), nothing with ``--quiet``. tqdm is the library made for the job
(and already installed with demucs); messages printed while the bar runs go through
``tqdm.write`` so they do not break it."""

from __future__ import annotations

import sys
from typing import TextIO


class RunProgress:
    def __init__(self, quiet: bool = False, stream: TextIO | None = None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, index: int, total: int, label: str) -> None:
        """Unit ``index`` (1-based) of ``total`` begins."""
        if self.quiet:
            return
        if not self.tty:
            print(f"[{index}/{total}] {label}", file=self.stream, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=index - 1, unit="unit", file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)
        self.bar.set_description_str(label[:60])

    def done(self) -> None:
        """The unit that started last has finished."""
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainProgress(RunProgress):
    """Progress of ``demixbench train``: a tqdm bar over steps (with the running loss) when
    stderr is a terminal, and one line per validation in any case; nothing with ``quiet``."""

    def begin(self, step: int, total: int | None) -> None:
        if self.quiet or not self.tty:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=step, unit="step", file=self.stream,
                        dynamic_ncols=True, smoothing=0.1)

    def advance(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)

    def validated(self, row: dict) -> None:
        self.message(f"step {row['step']}: train loss {row['train_loss']:.4f}, valid loss "
                     f"{row['valid_loss']:.4f}, SI-SDR {row['valid_si_sdr']:.2f} dB, uSDR "
                     f"{row['valid_usdr']:.2f} dB{' (best)' if row['best'] else ''}, "
                     f"{row['minutes']:.1f} min")

    def end(self) -> None:
        self.close()
