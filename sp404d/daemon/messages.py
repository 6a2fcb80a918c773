"""What reaches the daemon's loop, and from where: a file event from an observer thread
(:class:`~sp404d.watch.Change`), a trip back from a worker (:class:`TripEnded`, put by a
future's callback), a signal (:class:`SignalReceived`, put by the relay thread). Nothing else
touches the daemon's state: each is handled by the one main thread."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from sp404d.pipeline import Outcome
from sp404d.watch import Change


@dataclass(frozen=True)
class TripEnded:
    """A trip to a worker ended (its outcomes, or its worker's death, in the future)."""

    future: Future[list[Outcome]]


@dataclass(frozen=True)
class SignalReceived:
    signum: int


Message = Change | TripEnded | SignalReceived
