"""The ``separate`` and ``fit`` commands: separate files with one separator; fit a learning one."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import DemixbenchError
from ..specs import convert_params, parse_params
from .common import err


def cmd_separate(args: argparse.Namespace) -> int:
    from ..audio import load_audio, write_audio
    from ..progress import RunProgress
    from ..separators import default_registry, separate_adapted

    params = parse_params(args.param).get(args.separator, {})
    if args.weights:
        params.setdefault("weights", args.weights)
    sep = default_registry().create(args.separator, **params)
    if sep.oracle:
        raise DemixbenchError(f"{sep.name} is an oracle: it needs the reference stems, which a "
                              "single file does not have; use `demixbench run` on a dataset")
    out = Path(args.output)
    files = [Path(f) for f in args.file]
    # one file: its stems in OUT; several: OUT/<file name>/, the layout `evaluate` reads
    folders = [out] if len(files) == 1 else [out / _track_name(f) for f in files]
    if len(set(folders)) < len(folders):
        raise DemixbenchError("two input files have the same name (without extension); their "
                              "estimates would land in one folder: rename one")
    for f, folder in zip(files, folders):
        _check_outputs(f, folder, [folder / f"{stem}.wav" for stem in sep.sources],
                       args.overwrite)
    bar = RunProgress(quiet=args.quiet or len(files) == 1)
    try:
        for i, (f, folder) in enumerate(zip(files, folders), start=1):
            bar.start(i, len(files), f"{sep.name} on {f.name}")
            audio, sr = load_audio(f)
            estimates, conversions = separate_adapted(sep, audio, sr)
            for c in conversions:
                bar.message(f"note: {f.name}: {c}")
            for stem, est in estimates.items():
                print(write_audio(folder / f"{stem}.wav", est, sr))
            bar.done()
    finally:
        bar.close()
    return 0


def _track_name(path: Path) -> str:
    name = path.name
    for suffix in (".stem.mp4", path.suffix):
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_outputs(source: Path, folder: Path, targets: list[Path], overwrite: bool) -> None:
    """Before any separation: the output folder is writable, no existing file is replaced
    unless asked, and the input is never one of the outputs."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemixbenchError(f"-o {folder}: cannot create the folder ({exc.strerror}); choose "
                              "a folder you can write to") from None
    if not os.access(folder, os.W_OK):
        raise DemixbenchError(f"-o {folder}: not writable; choose a folder you can write to")
    if source.exists() and any(t.exists() and t.resolve() == source.resolve() for t in targets):
        raise DemixbenchError(f"-o {folder}: writing the estimates there would overwrite the "
                              f"input {source}; choose another folder")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise DemixbenchError(f"-o {folder}: {', '.join(existing)} already exist; pass "
                              "--overwrite to replace them, or choose another folder")
    stems = [t.stem for t in targets]
    from ..datasets.folder import STEM_EXTENSIONS

    clash = [f"{p.name}" for p in folder.glob("*") if p.stem in stems and p.suffix != ".wav"
             and p.suffix.lower() in STEM_EXTENSIONS]
    if clash:
        raise DemixbenchError(f"-o {folder}: holds {', '.join(clash)}, stem files of another "
                              "format; estimates written beside them would make two files for "
                              "one stem (a track folder's references); choose another folder")


def cmd_fit(args: argparse.Namespace) -> int:
    from ..datasets import open_dataset
    from ..progress import RunProgress
    from ..separators import default_registry

    params = parse_params(args.param).get(args.separator, {})
    cls = default_registry().get(args.separator)
    if not hasattr(cls, "untrained"):
        raise DemixbenchError(f"{args.separator} learns nothing from data; separators that do: "
                              "nmf_supervised")
    params = convert_params(args.separator, cls, params)
    try:
        sep = cls.untrained(**params)
    except (TypeError, ValueError) as exc:
        raise DemixbenchError(f"{args.separator}: bad parameters {params}: {exc}") from None
    tracks = [t for spec in args.dataset for t in open_dataset(spec)]
    err(f"fitting {args.separator} on {len(tracks)} tracks from {', '.join(args.dataset)}")
    bar = RunProgress(quiet=args.quiet)
    try:
        import inspect

        takes_progress = "progress" in inspect.signature(sep.fit).parameters  # plugins may not
        sep.fit(tracks, **({"progress": bar} if takes_progress else {}))
    finally:
        bar.close()
    path = sep.save(args.out)
    print(f"{path} (content sha256 {sep.config()['params'].get('dictionaries_sha256')})")
    return 0


def register(sub) -> None:
    se = sub.add_parser("separate", help="separate audio files, one file per stem")
    se.add_argument("file", nargs="+",
                    help="audio file(s); with several, each file's stems go to OUTPUT/<name>/")
    se.add_argument("-s", "--separator", required=True)
    se.add_argument("-o", "--output", required=True)
    se.add_argument("--param", action="append", metavar="SEPARATOR.KEY=VALUE",
                    help="a constructor parameter of the separator (repeatable)")
    se.add_argument("--weights", metavar="PATH", help="weight file or folder for the separator")
    se.add_argument("--overwrite", action="store_true",
                    help="replace estimate files that already exist in the output folder")
    se.add_argument("--quiet", action="store_true", help="no progress")
    se.set_defaults(func=cmd_separate)


    fi = sub.add_parser("fit", help="fit a learning separator (nmf_supervised) and save what it learned")
    fi.add_argument("separator")
    fi.add_argument("--dataset", action="append", required=True,
                    help="training data, e.g. synthetic:8:train or musdb:PATH:train (repeatable)")
    fi.add_argument("--out", required=True, help="file to write (.npz)")
    fi.add_argument("--quiet", action="store_true", help="no progress")
    fi.add_argument("--param", action="append", metavar="SEPARATOR.KEY=VALUE",
                    help="a constructor parameter, e.g. nmf_supervised.n_components=32")
    fi.set_defaults(func=cmd_fit)
