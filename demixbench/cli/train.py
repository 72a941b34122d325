"""The ``train``, ``fetch`` and ``synth`` commands: models and data for the benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DemixbenchError
from .common import err


def cmd_train(args: argparse.Namespace) -> int:
    from ..progress import TrainProgress
    from ..training.loop import Trainer, TrainOptions

    config = {}
    for item in args.config or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DemixbenchError(f"--config {item!r}: expected KEY=VALUE, e.g. channels=16")
        config[key.strip()] = value.strip()
    options = TrainOptions(
        model=args.model, datasets=args.dataset, valid=args.valid or [], out=args.out,
        steps=args.steps, minutes=args.minutes, batch=args.batch, segment=args.segment,
        lr=args.lr, seed=args.seed, device=args.device, resume=args.resume, config=config,
        epoch_steps=args.epoch_steps, valid_seconds=args.valid_seconds, half=args.half,
        threads=args.threads, loss=args.loss, snapshots=args.snapshot or [])
    trainer = Trainer(options, TrainProgress(quiet=args.quiet))
    for note in trainer.notes:
        err(f"note: {note}")
    params = sum(p.numel() for p in trainer.model.parameters())
    err(f"training {args.model} ({params / 1e6:.2f} M parameters) on {trainer.device}, "
         f"{trainer.threads} threads, from step {trainer.step}")
    result = trainer.run()
    from ..training.card import write_model_card

    write_model_card(result["out"])
    best = result["best"]
    print(f"{result['out']}: best at step {best['step']} (validation uSDR "
          f"{best['valid_usdr']:.2f} dB, SI-SDR {best['valid_si_sdr']:.2f} dB); stopped after "
          f"{result['stopped'] if result['stopped'] else 'the budget'} at step {result['step']}, "
          f"{result['minutes']:.1f} min; log {result['log']}, model card "
          f"{Path(result['out']).with_suffix('.md')}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..weights import fetch, manifest

    for name in args.names:
        mw = manifest(name)
        for path in fetch(name, args.dest, progress=err):
            print(path)
        if not mw.files:
            err(f"{name}: nothing to download")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from ..datasets import synthetic_dataset, write_dataset

    for subset, n in (("train", args.train), ("test", args.tracks)):
        if n:
            write_dataset(synthetic_dataset(n, subset, args.seconds), args.output)
    print(f"wrote a synthetic dataset in MUSDB layout to {args.output}")
    return 0


def register(sub) -> None:
    tr = sub.add_parser("train", help="train unet, demucs_lite or convtasnet on a dataset")
    tr.add_argument("model", help="unet | demucs_lite | convtasnet")
    tr.add_argument("--dataset", action="append", required=True,
                    help="training data, e.g. synthetic:8:train or folder:PATH (repeatable)")
    tr.add_argument("--valid", action="append",
                    help="validation data (repeatable; default: the last 15%% of every "
                         "training track, never drawn for training)")
    tr.add_argument("--out", required=True, help="best checkpoint (.pt); OUT.csv is the log, "
                                                 "OUT.state the state --resume reads")
    tr.add_argument("--steps", type=int, help="stop after N steps")
    tr.add_argument("--minutes", type=float, help="stop after M minutes")
    tr.add_argument("--batch", type=int, default=4)
    tr.add_argument("--segment", type=float, default=3.0, help="seconds per training example")
    tr.add_argument("--lr", type=float, default=3e-4)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps")
    tr.add_argument("--threads", type=int, help="torch threads (default: every core)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT.state")
    tr.add_argument("--config", action="append", metavar="KEY=VALUE",
                    help="architecture setting, e.g. channels=16 (repeatable)")
    tr.add_argument("--epoch-steps", type=int, default=100, help="steps between validations")
    tr.add_argument("--valid-seconds", type=float, default=10.0,
                    help="length of each validation excerpt")
    tr.add_argument("--half", action="store_true", help="store the checkpoint in float16")
    tr.add_argument("--loss", default="seed", choices=("seed", "l1"),
                    help="seed: 0.85 L1 + 0.15 multi-resolution STFT (the seed report's); l1: "
                         "waveform L1 only")
    tr.add_argument("--snapshot", type=int, action="append", metavar="STEP",
                    help="also keep the model of the validation at STEP as OUT.stepSTEP.pt "
                         "(an early checkpoint; a multiple of --epoch-steps; repeatable)")
    tr.add_argument("--quiet", action="store_true", help="no progress")
    tr.set_defaults(func=cmd_train)


    fe = sub.add_parser("fetch", help="download a model's published weights into the cache "
                                       "(the only command that uses the network)")
    fe.add_argument("names", nargs="+", help="e.g. htdemucs mdx_extra")
    fe.add_argument("--dest", help="folder (default: $DEMIXBENCH_CACHE or the torch hub cache)")
    fe.set_defaults(func=cmd_fetch)


    sy = sub.add_parser("synth", help="write the synthetic dataset to disk in MUSDB layout")
    sy.add_argument("output")
    sy.add_argument("--tracks", type=int, default=3, help="test tracks")
    sy.add_argument("--train", type=int, default=0, help="train tracks")
    sy.add_argument("--seconds", type=float, default=8.0)
    sy.set_defaults(func=cmd_synth)
