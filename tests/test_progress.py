"""Progress lines under DVC (no TTY): at most one line per `every_s`, a last one at the end, nothing when off."""

from __future__ import annotations

import re

from ganlab import progress
from ganlab.progress import Progress


class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_log_gets_a_line_every_few_seconds_with_rate_and_eta(monkeypatch, capsys):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    monkeypatch.delenv("GANLAB_PROGRESS", raising=False)
    bar = Progress("train@x seed 0", total=980, initial=100, every_s=10.0, tty=False)  # resumed at step 100
    for _ in range(79):  # 79 steps of 0.125 s (exact in binary): 9.875 s, no line yet
        clock.t += 0.125
        bar.update()
    assert capsys.readouterr().out == ""
    clock.t += 0.125  # the 80th step reaches 10 s: one line, 8 steps/s of this process, 800 left -> 100 s
    bar.update()
    assert capsys.readouterr().out.splitlines() == ["train@x seed 0: 180/980 steps (18 %), 8.0 steps/s, ETA 1m40s"]
    bar.close()  # the last line at the end, then nothing more
    assert re.fullmatch(r"train@x seed 0: 180/980 steps \(18 %\), 8\.0 steps/s, ETA 1m40s\n", capsys.readouterr().out)
    bar.update()
    bar.close()
    assert capsys.readouterr().out == ""


def test_disabled_progress_prints_nothing(monkeypatch, capsys):
    for kwargs, env in (({"enabled": False}, "1"), ({}, "0")):
        monkeypatch.setenv("GANLAB_PROGRESS", env)
        bar = Progress("x", total=10, every_s=0.0, tty=False, **kwargs)
        for _ in range(10):
            bar.update()
        bar.close()
        assert capsys.readouterr().out == ""
