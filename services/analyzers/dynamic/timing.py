"""A delay an input causes, told apart from a slow machine. One late answer proves nothing on a loaded host (other
processes, a collector, a busy sandbox make any answer late), so a delay counts only when heavy inputs (a sleep, or
work) and light ones (the same input asking for none) alternate, light first and last, and the quickest heavy answer
is still later than the slowest light one by LATE_S: a slowdown of the whole machine lands on light answers too and
so widens their spread instead of faking a delay. Work (SQLite has no sleep) is scaled from a first measurement to
about TARGET_S, and re-scaled from the alternation's own measure when that falls short, within a bound; a borderline
result (late, but by less than LATE_S) is measured again, a few times at most.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from services.analyzers.dynamic.attacker import Sent
from services.analyzers.dynamic.expectations import Delayed

DELAY_S = 3  # the delay asked for: seconds of sleep, or work scaled to take about this long
LATE_SHARE = 0.8  # of DELAY_S a heavy answer must be later than every light one
LATE_S = DELAY_S * LATE_SHARE
# work is scaled to this, so that a machine getting quicker still leaves it late by LATE_S
TARGET_S = DELAY_S * 1.5
# a first answer at least this late is worth scaling the work of: low, since a quick machine does the first work in
# a fraction of a second (2M rows of SQLite: 0.25 s here, quiet) and the alternation, not this, is the proof
SCALE_FROM_S = 0.1
BORDERLINE_SHARE = 0.5  # of LATE_S a result must reach to be measured again rather than dropped
ROUNDS = 2  # heavy answers, each between two light ones
ATTEMPTS = 3  # alternations at most, the first included
# of one request: a scaled delay on a machine slowed down meanwhile still answers
TIMEOUT_S = DELAY_S * 4 + 5.0

Send = Callable[[int], Awaitable[Sent]]


class Delay(msgspec.Struct, frozen=True):
    """A proven delay: the `amount` asked (seconds or rows of work), the slowest answer to the light input and the
    quickest answer to the heavy one."""

    amount: int
    quick: Sent
    slow: Sent

    @property
    def late_s(self) -> float:
        return self.slow.elapsed_s - self.quick.elapsed_s

    @property
    def proof(self) -> list[Sent]:
        """The exchanges that prove it, light first (the order `expectation` names)."""
        return [self.quick, self.slow]

    @property
    def expectation(self) -> Delayed:
        return Delayed(exchange=1, control=0, at_least_s=LATE_S)


async def alternated(send: Send, amount: int, none: int) -> Delay:
    """Light, heavy, light, …, light: the slowest light answer and the quickest heavy one. Stops at the first heavy
    answer that is not late, so that an app that ignores the input costs one round."""
    lights = [await send(none)]
    heavies: list[Sent] = []
    for _ in range(ROUNDS):
        heavies.append(await send(amount))
        lights.append(await send(none))
        if heavies[-1].elapsed_s - max(lights[-2:], key=_elapsed).elapsed_s < LATE_S:
            break
    return Delay(amount, max(lights, key=_elapsed), min(heavies, key=_elapsed))


async def proven_delay(
    send: Send, amount: int, none: int, *, baseline_s: float, most: int | None = None
) -> Delay | None:
    """The delay `send(amount)` causes against `send(none)`, proven by alternation, or None. `most` None: `amount` is
    seconds, asked as it is; otherwise it is work, scaled to about TARGET_S and never beyond `most`."""
    first = await send(amount)
    late = first.elapsed_s - baseline_s
    if late < (LATE_S if most is None else SCALE_FROM_S):
        return None
    for _ in range(ATTEMPTS):
        if most is not None:
            amount = min(most, max(1, round(amount * TARGET_S / late)))
        delay = await alternated(send, amount, none)
        if delay.late_s >= LATE_S:
            return delay
        if delay.late_s < LATE_S * BORDERLINE_SHARE or most is not None and amount >= most:
            # no delay at all, or no more work to ask for: the input is not what delays the answer
            return None
        late = delay.late_s
    return None


def _elapsed(sent: Sent) -> float:
    return sent.elapsed_s
