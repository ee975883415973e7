"""Progress you can watch: a tqdm bar on a terminal, one line every few seconds in a log (DVC, CI, nohup).

    with Progress("train@vanilla seed 0", total=epochs * steps, initial=done) as bar:
        for ...:
            bar.update()          # one step; cheap (no I/O unless a refresh is due)

On a terminal (stderr is a TTY) it is a tqdm bar with the rate and the ETA of the whole run. Elsewhere tqdm's
carriage returns would pile up in one log line, so the bar degrades to a plain line on stdout at most every
`every_s` seconds (and once at the end): `train@vanilla seed 0: 1874/18740 steps (10 %), 64.1 steps/s, ETA 4m23s`.
`GANLAB_PROGRESS=0` turns both off. Progress never changes what is computed: it reads no tensor.
"""

from __future__ import annotations

import os
import sys
import time

from tqdm import tqdm


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(self, label: str, total: int, *, unit: str = "step", initial: int = 0, every_s: float = 10.0,
                 enabled: bool = True, tty: bool | None = None):
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.done, self.start_done = initial, initial
        self.enabled = enabled and os.environ.get("GANLAB_PROGRESS", "1") != "0"
        tty = sys.stderr.isatty() if tty is None else tty
        self.bar = tqdm(total=total, initial=initial, desc=label, unit=unit, dynamic_ncols=True,
                        leave=False) if self.enabled and tty else None
        self.t0 = self.last = time.monotonic()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last >= self.every_s:
            self._line()

    def line(self) -> str:
        """`<label>: <done>/<total> <unit>s (<pct> %), <rate> <unit>s/s, ETA <remaining>` (rate of this process)."""
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.done - self.start_done) / elapsed
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
        pct = 100 * self.done / max(self.total, 1)
        return f"{self.label}: {self.done}/{self.total} {self.unit}s ({pct:.0f} %), {rate:.1f} {self.unit}s/s, ETA {eta}"

    def _line(self) -> None:
        self.last = time.monotonic()
        print(self.line(), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.done > self.start_done:
            self._line()
        self.enabled = False
