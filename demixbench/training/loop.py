"""The training loop of ``demixbench train``.

Adam; the learning rate halved when the validation score has not improved for two validations
(``ReduceLROnPlateau``); gradients clipped to norm 5; a validation every ``epoch_steps`` steps
(an "epoch": the sampler draws segments forever) with SI-SDR and uSDR on held-out excerpts,
the best checkpoint (by mean uSDR) kept at ``--out`` (and, with ``--snapshot STEP``, the model
of that validation at ``OUT.stepSTEP.pt``: an early checkpoint for studies); early stopping after ``patience``
validations without improvement; a CSV log beside the checkpoint (``OUT.csv``); the whole state
(model, optimiser, scheduler, random generators, step, elapsed time, best score) in
``OUT.state`` after every validation, so ``--resume`` continues an interrupted run from its last
validation exactly as if it had not stopped. ``--minutes`` stops on a time budget (time of
training and validation, not counting a resumed run's pause).
"""

from __future__ import annotations

import csv
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DemixbenchError
from ..metrics.sdr import si_sdr, usdr

STATE_FORMAT = "demixbench-train-state-1"
LOG_COLUMNS = ["step", "epoch", "minutes", "lr", "train_loss", "valid_loss", "valid_si_sdr",
               "valid_usdr", "best"]


@dataclass
class TrainOptions:
    model: str
    datasets: list[str]
    out: str
    valid: list[str] = field(default_factory=list)
    steps: int | None = None
    minutes: float | None = None
    batch: int = 4
    segment: float = 3.0
    lr: float = 3e-4
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    epoch_steps: int = 100
    valid_seconds: float = 10.0
    holdout: float = 0.15
    patience: int = 8
    half: bool = False
    threads: int | None = None
    loss: str = "seed"  # "seed": 0.85 L1 + 0.15 MR-STFT; "l1": waveform L1 only
    snapshots: list[int] = field(default_factory=list)  # steps whose model is kept as well

    def check(self) -> None:
        if self.steps is None and self.minutes is None:
            raise DemixbenchError("give a budget: --steps N or --minutes M (or both)")
        for name in ("steps", "batch", "epoch_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DemixbenchError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        for name in ("minutes", "segment", "lr", "valid_seconds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise DemixbenchError(f"--{name.replace('_', '-')} must be positive, got {value}")
        from .loss import LOSSES

        if self.loss not in LOSSES:
            raise DemixbenchError(f"--loss {self.loss}: use one of {', '.join(LOSSES)}")
        for step in self.snapshots:
            if step < 1 or step % self.epoch_steps:
                raise DemixbenchError(f"--snapshot {step}: snapshots are taken at validations, "
                                      f"so use a positive multiple of --epoch-steps "
                                      f"({self.epoch_steps})")
        if not 0 < self.holdout < 1:
            raise DemixbenchError(f"holdout must be between 0 and 1, got {self.holdout}")


def check_writable(out: Path) -> None:
    """``--out``'s folder must take the checkpoint, its log and state: found now, not after
    the first validation (minutes of training later)."""
    if out.is_dir():
        raise DemixbenchError(f"--out {out} is a folder; give a file name, e.g. {out / 'model.pt'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.{os.getpid()}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemixbenchError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose a "
                              "folder you can write to") from None


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def log_path(out: Path) -> Path:
    return out.with_suffix(".csv")


def snapshot_path(out: Path, step: int) -> Path:
    """Where ``--snapshot STEP`` keeps the model of that step: ``unet.pt`` → ``unet.step40.pt``."""
    return out.with_name(f"{out.stem}.step{step}{out.suffix}")


class Trainer:
    def __init__(self, options: TrainOptions, progress=None):
        import torch

        from ..datasets import open_dataset
        from ..device import pick_device
        from ..models import architecture
        from .data import SegmentSampler, fingerprint, load_songs, split_holdout, validation_excerpts

        options.check()
        self.options = options
        self.out = Path(options.out)
        self.progress = progress
        self.arch = architecture(options.model)
        self.threads = options.threads or os.cpu_count() or 1
        torch.set_num_threads(self.threads)
        self.device, note = pick_device(options.device)
        self.notes = [note] if note else []
        if state_path(self.out).exists() and not options.resume:
            raise DemixbenchError(f"{state_path(self.out)} exists (an earlier training run): pass "
                                  "--resume to continue it, or choose another --out")
        if options.resume and not state_path(self.out).exists():
            raise DemixbenchError(f"--resume: no training state at {state_path(self.out)}")
        if options.resume and state_path(self.out).stat().st_size == 0:
            raise DemixbenchError(f"--resume: {state_path(self.out)} is empty (0 bytes: a run "
                                  "stopped while writing it?); start again without --resume "
                                  "after removing it, or restore the file")
        check_writable(self.out)
        config = self.arch.config(options.config)
        datasets = [open_dataset(spec) for spec in options.datasets]
        songs = load_songs(datasets, config.samplerate, config.sources)
        if options.valid:
            valid_sets = [open_dataset(spec) for spec in options.valid]
            valid_songs = load_songs(valid_sets, config.samplerate, config.sources)
            train_songs = songs
        else:
            valid_sets = []
            train_songs, valid_songs = split_holdout(songs, options.holdout)
        segment = int(round(options.segment * config.samplerate))
        self.sampler = SegmentSampler(train_songs, segment)
        self.valid = validation_excerpts(valid_songs, options.valid_seconds, config.samplerate,
                                         config.sources)
        self.data = {"train": fingerprint(datasets), "valid": fingerprint(valid_sets)
                     or f"last {options.holdout:.0%} of each training track"}
        torch.manual_seed(options.seed)
        self.rng = np.random.default_rng(options.seed)
        self.model = self.arch.build(config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options.lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=0.5, patience=2)
        self.step = 0
        self.minutes = 0.0
        self.best: dict[str, Any] | None = None
        self.bad_epochs = 0
        self.history: list[dict] = []
        self.losses: list[float] = []
        if options.resume:
            self._load_state()

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict:
        import torch

        return {"format": STATE_FORMAT, "model": self.options.model,
                "config": self._config_dict(), "options": asdict(self.options),
                "model_state": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step,
                "minutes": self.minutes, "best": self.best, "bad_epochs": self.bad_epochs,
                "history": self.history, "rng": _rng_state(self.rng),
                "torch_rng": torch.get_rng_state()}

    def _config_dict(self) -> dict:
        from ..models.checkpoint import config_dict

        return config_dict(self.model.config)

    def _save_state(self) -> None:
        import torch

        path = state_path(self.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self._state(), tmp)
        tmp.replace(path)

    def _load_state(self) -> None:
        import torch

        from ..weights import load_torch

        state = load_torch(state_path(self.out))
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise DemixbenchError(f"{state_path(self.out)} is not a demixbench training state")
        if state["model"] != self.options.model or state["config"] != self._config_dict():
            raise DemixbenchError(f"{state_path(self.out)} trains {state['model']} with "
                                  f"{state['config']}; this command asks for "
                                  f"{self.options.model} with {self._config_dict()}: use the "
                                  "same model and --config to resume")
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.minutes = int(state["step"]), float(state["minutes"])
        self.best, self.bad_epochs = state["best"], int(state["bad_epochs"])
        self.history = list(state["history"])
        self.rng.bit_generator.state = _rng_from_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])

    # -- loop --------------------------------------------------------------------------------
    def _done(self) -> str | None:
        o = self.options
        if o.steps is not None and self.step >= o.steps:
            return f"{o.steps} steps"
        if o.minutes is not None and self.minutes >= o.minutes:
            return f"{o.minutes:g} minutes"
        if self.bad_epochs >= o.patience:
            return f"early stop: no better validation in {o.patience} validations"
        return None

    def train_step(self, mixture: np.ndarray, stems: np.ndarray) -> float:
        import torch

        from .loss import separation_loss

        self.model.train()
        mix = torch.from_numpy(mixture).to(self.device)
        ref = torch.from_numpy(stems).to(self.device)
        loss = separation_loss(self.model(mix), ref, self.model.sources, self.options.loss)
        if not torch.isfinite(loss):
            raise DemixbenchError(f"the training loss is {float(loss)} at step {self.step + 1}; "
                                  f"the last validated state is in {state_path(self.out)}: "
                                  "lower --lr and --resume, or start again")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        return float(loss.detach())

    def validate(self) -> dict[str, float]:
        import torch

        from .loss import separation_loss

        self.model.eval()
        losses, si, us = [], [], []
        with torch.no_grad():
            for _, stems in self.valid:
                mix = torch.from_numpy(np.ascontiguousarray(stems.sum(axis=0)))[None].to(self.device)
                ref = torch.from_numpy(np.ascontiguousarray(stems))[None].to(self.device)
                est = self.model(mix)
                losses.append(float(separation_loss(est, ref, self.model.sources,
                                                    self.options.loss)))
                est = est[0].cpu().numpy()
                for k in range(stems.shape[0]):
                    if not np.any(stems[k]):  # a silent target has no SDR to learn from
                        continue
                    si.append(float(np.mean(si_sdr(stems[k], est[k]))))
                    us.append(usdr(stems[k], est[k]))
        return {"valid_loss": float(np.mean(losses)), "valid_si_sdr": float(np.mean(si)),
                "valid_usdr": float(np.mean(us))}

    def run(self) -> dict:
        o = self.options
        if self.progress is not None:
            self.progress.begin(self.step, o.steps)
        t0 = time.perf_counter() - self.minutes * 60
        reason = self._done()
        while reason is None:
            mixture, stems = self.sampler.batch(self.rng, o.batch)
            self.losses.append(self.train_step(mixture, stems))
            self.step += 1
            self.minutes = (time.perf_counter() - t0) / 60
            if self.progress is not None:
                self.progress.advance(self.step, self.losses[-1])
            at_budget = ((o.steps is not None and self.step >= o.steps)
                         or (o.minutes is not None and self.minutes >= o.minutes))
            if self.step % o.epoch_steps == 0 or at_budget:
                self._epoch_end()
            reason = self._done()
        if not self.history or self.history[-1]["step"] != self.step:
            self._epoch_end()
        if self.progress is not None:
            self.progress.end()
        return {"stopped": reason, "step": self.step, "minutes": self.minutes,
                "best": self.best, "out": str(self.out), "log": str(log_path(self.out)),
                "notes": self.notes}

    def _epoch_end(self) -> None:
        from ..models.checkpoint import save_model

        scores = self.validate()
        improved = self.best is None or scores["valid_usdr"] > self.best["valid_usdr"]
        row = {"step": self.step, "epoch": len(self.history) + 1,
               "minutes": round(self.minutes, 3), "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": float(np.mean(self.losses)) if self.losses else float("nan"),
               **scores, "best": int(improved)}
        self.losses = []
        self.history.append(row)
        self.scheduler.step(scores["valid_usdr"])
        if improved:
            self.best = {"step": self.step, **scores}
            self.bad_epochs = 0
            save_model(self.model, self.options.model, self.out, self._training_record(),
                       half=self.options.half)
        else:
            self.bad_epochs += 1
        if self.step in self.options.snapshots:
            save_model(self.model, self.options.model, snapshot_path(self.out, self.step),
                       self._training_record(), half=self.options.half)
        self._write_log()
        self._save_state()
        if self.progress is not None:
            self.progress.validated(row)

    def _training_record(self) -> dict:
        import torch

        o = self.options
        return {"data": self.data, "steps": self.step, "minutes": round(self.minutes, 3),
                "seed": o.seed, "batch": o.batch, "segment_seconds": o.segment, "lr": o.lr,
                "validation": {"step": self.step, **(self.history[-1] if self.history else {})},
                "machine": {"device": self.device, "threads": self.threads,
                            "processor": platform.processor() or platform.machine(),
                            "torch": str(torch.__version__)},
                "loss": ("0.85 L1 + 0.15 multi-resolution STFT (512/1024/2048), drums, bass x1.2"
                         if o.loss == "seed" else "waveform L1, drums, bass x1.2")}

    def _write_log(self) -> None:
        path = log_path(self.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            w.writeheader()
            for row in self.history:
                w.writerow({k: row.get(k) for k in LOG_COLUMNS})


def _rng_state(rng: np.random.Generator) -> dict:
    """The generator's state with its 128-bit integers as strings (torch's weights-only loader
    reads plain containers)."""
    state = rng.bit_generator.state
    return {"bit_generator": state["bit_generator"],
            "state": {k: str(v) for k, v in state["state"].items()},
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}


def _rng_from_state(saved: dict) -> dict:
    return {"bit_generator": saved["bit_generator"],
            "state": {k: int(v) for k, v in saved["state"].items()},
            "has_uint32": saved["has_uint32"], "uinteger": saved["uinteger"]}
