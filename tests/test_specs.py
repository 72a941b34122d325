"""Option values typed from the constructor's annotations (typing.get_origin/get_args), never
by searching the annotation's text; every bad value is a one-line error naming the parameter
and the accepted form."""

from __future__ import annotations

from typing import Literal

import pytest
from conftest import cli

from demixbench.errors import DemixbenchError
from demixbench.separators import default_registry
from demixbench.specs import convert_params, parse_gates, parse_params


def test_a_tuple_parameter_is_read_as_values_not_characters():
    sep = default_registry().create("hpss_repet", **parse_params(
        ["hpss_repet.vocal_band=3000/300"])["hpss_repet"])
    assert sep.params()["vocal_band"] == [3000.0, 300.0]  # was [3.0, 0.0]: read per character


@pytest.mark.parametrize("item, message", [
    ("vocal_band=25", r"--param hpss_repet.vocal_band=25: expected 2 values separated by /"),
    ("zero_phase=maybe", r"--param hpss_repet.zero_phase=maybe: expected true or false"),
    ("zero_phase=1", r"--param hpss_repet.zero_phase=1: expected true or false"),
    ("power=nan", r"--param hpss_repet.power=nan: expected a finite number"),
    ("power=inf", r"--param hpss_repet.power=inf: expected a finite number"),
    ("max_frames=2.5", r"--param hpss_repet.max_frames=2.5: expected an integer"),
    ("colour=red", r"--param hpss_repet.colour: hpss_repet has no option 'colour'"),
])
def test_bad_parameter_values_are_one_line_errors(tmp_path, item, message):
    code, _, err = cli("run", "--dataset", "synthetic:1", "--separators", "hpss_repet",
                       "--param", f"hpss_repet.{item}", "--metrics", "usdr", "--excerpt", "1",
                       "--no-report", "--quiet", "--store", str(tmp_path / "s.sqlite"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demixbench: error: "), err
    assert pytest.importorskip("re").search(message, lines[0]), lines[0]


def test_annotated_forms():
    class Thing:
        def __init__(self, mode: Literal["a", "b"] = "a", scale: float | None = None,
                     sizes: list[int] | None = None, pair: tuple[float, float] = (0, 1),
                     name: str = "x", extra=None):
            pass

    out = convert_params("thing", Thing, {"mode": "b", "scale": "none", "sizes": "1/2/3",
                                          "pair": "0.5/2", "name": "25", "extra": "[1, 2]"})
    assert out == {"mode": "b", "scale": None, "sizes": [1, 2, 3], "pair": (0.5, 2.0),
                   "name": "25", "extra": [1, 2]}  # "25" stays text for a str
    assert convert_params("thing", Thing, {"scale": 2})["scale"] == 2.0  # typed values pass
    with pytest.raises(DemixbenchError, match=r"thing\.mode=c: expected one of a, b"):
        convert_params("thing", Thing, {"mode": "c"})
    with pytest.raises(DemixbenchError, match=r"thing\.pair=1/2/3: expected 2 values"):
        convert_params("thing", Thing, {"pair": "1/2/3"})
    with pytest.raises(DemixbenchError, match=r"thing\.scale=nan: expected a finite number or none"):
        convert_params("thing", Thing, {"scale": float("nan")})


def test_gates_have_one_grammar():
    gates = parse_gates("usdr:0.5,sdr:vocals:1")
    assert [(g.metric, g.target, g.db) for g in gates] == [("usdr", None, 0.5),
                                                           ("sdr", "vocals", 1.0)]
    with pytest.raises(DemixbenchError, match="expected METRIC\\[:TARGET\\]:DB with DB >= 0"):
        parse_gates("usdr:-1")
