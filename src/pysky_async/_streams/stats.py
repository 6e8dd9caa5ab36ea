"""Counters and rates of one stream consumer."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from .events import StreamEvent


@dataclass
class StreamStats:
    """What a feed and its consumer did so far; ``lag`` and ``events_per_second`` are live."""

    frames: int = 0
    bad_frames: int = 0
    error_frames: int = 0
    """Error frames (``{op: -1}``) the server sent before closing (``ConsumerTooSlow``, ...)."""
    events: int = 0
    filtered: int = 0
    handled: int = 0
    handler_errors: int = 0
    bad_signatures: int = 0
    stale_revs: int = 0
    """Commits (and on-commit work) skipped: their ``rev`` was not above the repo's applied one."""
    connects: int = 0
    reconnects: int = 0
    silent_reconnects: int = 0
    commits: int = 0
    committed_cursor: int | None = None
    lost_frames: int = 0
    """Frames above the socket's limit (4 × ``max_frame_bytes``) that were stepped over: their events are lost."""
    lost_cursors: deque[int] = field(default_factory=lambda: deque(maxlen=1000), repr=False)
    """Firehose seqs stepped over because their frame was above the socket's limit (the last 1,000)."""
    last_event: StreamEvent | None = None
    """The newest handled event."""
    _marks: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64), repr=False)

    @property
    def lag(self) -> float | None:
        """Seconds between now and the newest handled event's time (None before the first)."""
        stamp = None if self.last_event is None else self.last_event.timestamp()
        return None if stamp is None else max(0.0, time.time() - stamp)

    def mark(self) -> None:
        """Sample the handled count (called periodically) for ``events_per_second``."""
        now = time.monotonic()
        self._marks.append((now, self.handled))
        while len(self._marks) > 2 and now - self._marks[0][0] > 10:
            self._marks.popleft()

    @property
    def events_per_second(self) -> float:
        """Handled events per second over the last ~10 s of samples."""
        if len(self._marks) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._marks[0], self._marks[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def summary(self) -> str:
        lag = "-" if self.lag is None else f"{self.lag:.1f} s"
        return (f"{self.handled} handled, {self.events_per_second:.0f} events/s, lag {lag}, "
                f"{self.filtered} filtered, {self.bad_frames} bad frames, {self.error_frames} error frames, "
                f"{self.lost_frames} frames lost, {self.handler_errors} handler "
                f"errors, {self.bad_signatures} bad signatures, {self.reconnects} reconnects, "
                f"cursor {self.committed_cursor}")
