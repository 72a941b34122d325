"""MSST's YAML configs as plain dicts.

MSST reads its configs in two ways: roformer configs through PyYAML's full loader (which
builds ``!!python/tuple``), htdemucs configs through OmegaConf (which reads ``1e-3`` as a
float where YAML 1.1 reads a string). This loader does both, and nothing else a full loader
would do: no other python tags, so a config cannot run code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import SeparatorError


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tuple_(loader, node):
        return tuple(loader.construct_sequence(node, deep=True))

    Loader.add_constructor("tag:yaml.org,2002:python/tuple", tuple_)
    # floats written without a dot (1e-3), as OmegaConf's loader reads them
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    return Loader


def load_config(path: str | Path) -> dict[str, Any]:
    """The config at ``path``; a one-line error when it is missing or not an MSST config."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise SeparatorError(f"no MSST config at {path}; pass the YAML file that came with the "
                             "checkpoint (--param NAME.config=CONFIG.yaml)")
    try:
        config = yaml.load(path.read_text(), Loader=_loader())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise SeparatorError(f"{path}: not a readable YAML config ({first})") from None
    if not isinstance(config, dict) or "audio" not in config and "training" not in config:
        raise SeparatorError(f"{path}: not an MSST config (it needs the audio, model, training "
                             "and inference sections of MSST's configs)")
    return config


def section(config: dict, name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def instruments(config: dict) -> list[str]:
    """The stems MSST's demix returns: the target instrument when the config sets one, else
    ``training.instruments``."""
    training = section(config, "training")
    target = training.get("target_instrument")
    if target:
        return [str(target)]
    names = training.get("instruments")
    if not names:
        raise SeparatorError("the MSST config names no training.instruments")
    return [str(n) for n in names]


def sample_rate(config: dict) -> int:
    return int(section(config, "audio").get("sample_rate")
               or section(config, "training").get("samplerate") or 44100)
