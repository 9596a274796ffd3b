"""Guidance for the soft controls: each step pushed away from what the model would write unsteered.

A model trained with controls gives next-token logits with the asked controls in its input
(steered) and, run on the same tokens without the control tokens, logits without them
(unsteered: a quarter of its training pieces had no controls, so it knows both). Sampling from

    unsteered + guidance * (steered - unsteered)

follows the controls more strongly for guidance > 1 and is the model itself at 1: the
"classifier-free guidance" of diffusion models, used for language models by Sanchez et al.
(2023, "Stay on topic with classifier-free guidance"). It costs a second LSTM state per piece,
one more step per sampled token.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Unsteered:
    """The batch's second state: the same tokens as the steered one, control tokens left out."""

    def __init__(self, stepper: Any, state: Any, logits: np.ndarray, controls: np.ndarray):
        self.stepper, self.state, self.logits = stepper, state, logits  # logits (B, V)
        self.controls = controls  # (V,) bool: the control tokens it never reads

    def guide(self, steered: np.ndarray, guidance: float) -> np.ndarray:
        """(B, V) logits to sample from."""
        return self.logits + guidance * (steered - self.logits)

    def observe(self, ids: np.ndarray, to_device: Any) -> None:
        """Read the ids just written (B,), except in the rows where they are control tokens."""
        keep = self.controls[ids]  # (B,) rows that stay where they were
        if keep.all():
            return
        logits, state = self.stepper.step(to_device(ids), self.state)
        logits = logits if isinstance(logits, np.ndarray) else logits.float().cpu().numpy()
        if keep.any():
            logits = np.where(keep[:, None], self.logits, logits)
            rows = keep[:, None] if self.stepper.use_numpy else to_device(keep)[:, None]
            xp = self.stepper.xp
            state = [(xp.where(rows, h0, h1), xp.where(rows, c0, c1))
                     for (h0, c0), (h1, c1) in zip(self.state, state)]  # fmt: skip
        self.logits, self.state = logits, state
