"""Real-Time Chunking (RTC) guidance for a few-step sampler.

LeRobot's RTC (``lerobot.policies.rtc``, after Black et al., "Real-Time Execution of Action Chunking Flow
Policies", 2025) inpaints the part of the next chunk that the robot executes while the chunk is computed:
at each Euler step it predicts the clean chunk ``x_t - t * v`` and pulls the velocity towards the previous
chunk's leftover by ``g * W * (leftover - prediction)``, with prefix weights W (1 on the frozen actions,
decaying over the execution horizon) and a guidance weight g that grows without bound as t -> 1 and is
clamped at ``max_guidance_weight`` (10 by default).

That clamp is tuned for 10 steps: a step of size |dt| = 1/K moves the chunk by ``|dt| * g`` times the
distance to the leftover, which is 1 (lands on it) at K = 10 but 10x past it at K = 1. For a K-step sampler
we clamp g at ``min(max_guidance_weight, K)``, so that no step overshoots the leftover. At K = 1 (the
1-NFE jump from t = 1) this makes RTC exact inpainting: ``x_0 = pred + W * (leftover - pred)``, the
leftover where W = 1 and a blend over the horizon.
"""

import dataclasses

from lerobot.policies.rtc.modeling_rtc import RTCProcessor


def few_step_rtc(processor: RTCProcessor, num_steps: int) -> RTCProcessor:
    """A processor with the policy's RTC settings and the guidance weight clamped at ``num_steps``
    (a new local object; the policy's own processor is not changed)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    cfg = processor.rtc_config
    if cfg.max_guidance_weight <= num_steps:
        return processor
    return RTCProcessor(dataclasses.replace(cfg, max_guidance_weight=float(num_steps)))
