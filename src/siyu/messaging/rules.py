"""Pure rules of messaging: variant and holdout assignment, and the lift statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Assignment hashes (also written in SQL in broadcasts.py; test_broadcasts checks they agree).
HOLDOUT_MULT = 2654435761
VARIANT_MULT = 2246822519
VARIANT_MOD = 1000003


def holdout_bucket(customer_id: int, broadcast_id: int) -> int:
    """0..9999; a customer is held out when the bucket is below the holdout in basis points."""
    return (customer_id * HOLDOUT_MULT + broadcast_id * 40503) % 10000


def variant_slot(customer_id: int, broadcast_id: int, total_weight: int) -> int:
    return ((customer_id * VARIANT_MULT + broadcast_id) % VARIANT_MOD) % total_weight


@dataclass(frozen=True)
class Lift:
    treated_rate: float
    control_rate: float
    difference: float  # treated - control, as a share (0.012 = 1.2 points)
    low: float  # 95 % confidence interval of the difference
    high: float
    significant: bool


def lift(treated_n: int, treated_conv: int, control_n: int, control_conv: int, z: float = 1.96) -> Lift | None:
    """Difference of two conversion rates with a Wald 95 % interval; None without a control group."""
    if treated_n <= 0 or control_n <= 0:
        return None
    p1, p0 = treated_conv / treated_n, control_conv / control_n
    se = math.sqrt(p1 * (1 - p1) / treated_n + p0 * (1 - p0) / control_n)
    diff = p1 - p0
    low, high = diff - z * se, diff + z * se
    return Lift(p1, p0, diff, low, high, significant=low > 0 or high < 0)
