"""Learning-rate schedules as pure functions of the step.

A function of (step, config) rather than a stateful scheduler object: a resumed run needs nothing but the step,
and a live change of the schedule takes effect at the next step without rebuilding anything.
"""

from __future__ import annotations

import math

from gniazdo.train.config import ScheduleSection


def lr_at(step: int, total_steps: int, peak_lr: float, cfg: ScheduleSection) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    warmup: linear from peak/warmup to peak over ``warmup_steps``; then
    cosine: half a cosine down to ``peak * min_lr_ratio`` at the last step;
    linear: a straight line down to the same floor;
    constant: peak;
    wsd (warmup-stable-decay): peak until the last ``decay_fraction`` of the steps, then linear to the floor
    (a run can be extended or branched from any stable-phase checkpoint).
    """
    floor = peak_lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return peak_lr * (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return peak_lr
    if cfg.kind == "wsd":
        decay_steps = max(1, round(total_steps * cfg.decay_fraction))
        start = max(cfg.warmup_steps, total_steps - decay_steps)
        if step < start:
            return peak_lr
        progress = (step - start) / max(1, total_steps - 1 - start)
    else:
        progress = (step - cfg.warmup_steps) / max(1, total_steps - 1 - cfg.warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if cfg.kind == "cosine":
        return floor + (peak_lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return peak_lr - (peak_lr - floor) * progress
