"""The paper's section 9 numbers, beside which ours are shown (success rates in [0, 1])."""
from __future__ import annotations

TASKS = ("reach-v3", "push-v3", "pick-place-v3")
MAIN = {  # method -> (reach, push, pick-place, average)
    "raw": (0.782, 0.524, 0.316, 0.541),
    "autoencoder": (0.840, 0.618, 0.423, 0.627),
    "contrastive": (0.865, 0.642, 0.458, 0.655),
    "passive-jepa": (0.871, 0.660, 0.482, 0.671),
    "act-jepa": (0.924, 0.746, 0.589, 0.753),
}
NOISE = {  # method -> average success at sigma 0, 0.05, 0.1, 0.2, 0.3
    "raw": (0.541, 0.412, 0.287, 0.143, 0.068),
    "autoencoder": (0.627, 0.509, 0.384, 0.221, 0.125),
    "passive-jepa": (0.671, 0.583, 0.475, 0.326, 0.201),
    "act-jepa": (0.753, 0.708, 0.642, 0.531, 0.417),
}
SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.3)
ABLATIONS = {  # variant -> average success (None: the paper reports collapse)
    "act-jepa": 0.753, "passive-jepa": 0.614, "act-jepa/no-ema": None,
    "act-jepa/tau-0.99": 0.721, "act-jepa/tau-0.9999": 0.738,
    "action-reconstruction": 0.635, "act-jepa/no-bottleneck": 0.687,
    "act-jepa/add": 0.739,
}
DATA = {  # method -> average success with 10, 25, 50, 100 demos
    "raw": (0.182, 0.325, 0.438, 0.541),
    "act-jepa": (0.427, 0.583, 0.681, 0.753),
}
DEMO_COUNTS = (10, 25, 50, 100)
