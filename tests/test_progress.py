"""Run progress: a bar with count, rate and ETA on a terminal, plain lines elsewhere, nothing
with --quiet."""

from __future__ import annotations

import io

from demixbench.progress import RunProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _drive(p: RunProgress) -> None:
    p.start(2, 3, "mix on demo/a")  # one unit was done before (a resumed run)
    p.done()
    p.message("notice: something")
    p.start(3, 3, "irm1 on demo/b")
    p.done()
    p.close()


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    _drive(RunProgress(stream=out))
    assert out.getvalue().splitlines() == ["[2/3] mix on demo/a", "notice: something",
                                           "[3/3] irm1 on demo/b"]


def test_a_bar_with_count_rate_and_eta_on_a_terminal():
    out = _Terminal()
    _drive(RunProgress(stream=out))
    text = out.getvalue()
    assert "3/3" in text and "unit/s" in text and "<" in text  # count, rate, elapsed<remaining
    assert "irm1 on demo/b" in text and "notice: something\n" in text
    assert "[2/3]" not in text


def test_quiet_prints_nothing():
    out = _Terminal()
    _drive(RunProgress(quiet=True, stream=out))
    assert out.getvalue() == ""
