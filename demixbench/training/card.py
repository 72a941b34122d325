"""A model card for a trained checkpoint, written from what the checkpoint records (the
``training`` block of :mod:`.checkpoint`): architecture and size, data, steps, minutes,
machine, seed, validation scores. ``demixbench train`` writes one beside the checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..models.checkpoint import read_package
from ..models.registry import architecture
from ..weights import file_sha256


def model_card(path: str | Path) -> str:
    path = Path(path)
    pkg = read_package(path)
    t = pkg.get("training", {})
    arch = architecture(pkg["model"])
    params = sum(v.numel() for v in pkg["state_dict"].values()
                 if v.is_floating_point() and v.dim() > 0)
    dtype = next(iter(pkg["state_dict"].values())).dtype
    v = t.get("validation", {})
    m = t.get("machine", {})
    data = t.get("data", {})
    train = "; ".join(f"`{d['dataset']}` ({d['tracks']} tracks, sha256 {d['sha256'][:12]})"
                      for d in data.get("train", []))
    valid = data.get("valid")
    valid = ("; ".join(f"`{d['dataset']}` ({d['tracks']} tracks)" for d in valid)
             if isinstance(valid, list) else valid)
    lines = [
        f"# {pkg['model']}: {path.name}",
        "",
        f"{arch.description}.",
        "",
        f"- file: `{path.name}`, {path.stat().st_size / 1e6:.2f} MB, {dtype} weights, "
        f"sha256 `{file_sha256(path)}`",
        f"- parameters: {params:,}; configuration: "
        + ", ".join(f"{k}={v}" for k, v in pkg["config"].items()),
        f"- training data: {train or 'not recorded'}",
        f"- validation data: {valid or 'not recorded'}",
        f"- steps: {t.get('steps')} (batch {t.get('batch')}, {t.get('segment_seconds')} s "
        f"segments, Adam lr {t.get('lr')}), {t.get('minutes')} minutes, seed {t.get('seed')}",
        f"- machine: {m.get('device')} ({m.get('processor')}), {m.get('threads')} threads, "
        f"torch {m.get('torch')}",
        f"- loss: {t.get('loss')}",
        f"- validation at step {v.get('step')}: uSDR {v.get('valid_usdr', float('nan')):.2f} dB, "
        f"SI-SDR {v.get('valid_si_sdr', float('nan')):.2f} dB (mean over targets and "
        "excerpts; silent targets left out)",
        "",
        "A weak baseline trained on a laptop-class CPU budget, for the benchmark's strength "
        "ladder; not a competitive separator.",
        "",
    ]
    return "\n".join(lines + _history(path))


def _history(path: Path) -> list[str]:
    """Every validation of the training run, from its CSV log beside the checkpoint."""
    import csv

    from .loop import log_path  # the log demixbench train writes beside OUT

    log = log_path(path)
    if not log.is_file():
        return []
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    out = ["## Training run", "",
           f"{len(rows)} validations; the run ended at step {rows[-1]['step']} after "
           f"{float(rows[-1]['minutes']):.1f} minutes; this file is the model of the step "
           "marked best last.", "",
           "| step | minutes | lr | train loss | valid uSDR | valid SI-SDR | best so far |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['step']} | {float(r['minutes']):.1f} | {float(r['lr']):g} | "
                   f"{float(r['train_loss']):.3f} | {float(r['valid_usdr']):.2f} | "
                   f"{float(r['valid_si_sdr']):.2f} | {'yes' if r['best'] == '1' else ''} |")
    return out + [""]


def write_model_card(path: str | Path) -> Path:
    path = Path(path)
    card = path.with_suffix(".md")
    card.write_text(model_card(path), encoding="utf-8")
    return card
