"""Expert demonstrations from the simulated arm, in the episodes format (`data/episodes.py`):
what `actjepa collect` writes. Reproducible from (task, seed, episode index) alone (arm.py says
how start configurations are drawn)."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from actjepa_core.data.episodes import Episode
from actjepa_core.errors import ActJepaError
from actjepa_core.progress import progress_bar
from actjepa_core.sim.arm import (
    ACTION_DIM,
    ACTION_HIGH,
    ACTION_LOW,
    CAMERA,
    EXTRA_STEPS_AFTER_SUCCESS,
    IMAGE_KEY,
    OBS_KEYS,
    SimArm,
    SuccessStop,
    camera_key,
    check_count,
    key_cameras,
)
from actjepa_core.sim.experts import check_expert_task
from actjepa_core.sim.tasks import check_expert_aim


def _check_keys(keys: Sequence[str] | None, image_size: int | None) -> tuple[str, ...]:
    """The observation keys to record: the default, or a checked subset of ``OBS_KEYS``."""
    if keys is None:
        return ("state", "image") if image_size is not None else ("state",)
    keys = tuple(keys)
    unknown = sorted(k for k in set(keys) - set(OBS_KEYS) if not k.startswith(IMAGE_KEY + "_"))
    if unknown or not keys or len(set(keys)) != len(keys):
        raise ActJepaError(f"observation keys {list(keys)}: expected distinct keys of "
                           f"{list(OBS_KEYS)} or image_<camera>")
    cameras = key_cameras(keys)
    if cameras and image_size is None:
        raise ActJepaError(f"observation keys {[camera_key(c) for c in cameras]} need an image "
                           "size (--image-size S)")
    return keys



def collect_episodes(task: str, episodes: int, seed: int = 0, image_size: int | None = None,
                     max_steps: int | None = None, extra_steps: int = EXTRA_STEPS_AFTER_SUCCESS,
                     progress: bool = True, explore: float = 0.0,
                     keys: Sequence[str] | None = None,
                     dart_noise: float = 0.0, expert_aim: str = "hand") -> Iterator[Episode]:
    """Run the scripted expert on episodes 0..episodes-1 and yield each as an ``Episode``.

    Row t holds the observation at tick t and the (clipped) action applied at tick t. An episode
    ends ``extra_steps`` ticks after its first success, or after ``max_steps`` ticks; failures are
    yielded too (``success=False``) so the caller decides whether to keep them. A generator, so
    long runs can be written without holding every image in memory twice.

    ``explore`` > 0 makes play data for a world model that must plan (latent MPC): each tick's
    action is uniform random with that probability, and episodes run the full ``max_steps`` so
    they also show the arm leaving and regaining the goal, which expert-only demos never do.

    ``dart_noise`` > 0 records demos the DART way (Laskey et al. 2017): each tick the arm applies
    the expert's action plus Gaussian noise of that standard deviation (action units, clipped to
    [-1, 1]) while the row records the expert's own action for the state it was in. The demos
    then show the arm off the expert's path and what brings it back, which a policy cloned from
    clean demos never sees and which it needs once its own errors push it there. The recorded
    actions are labels, not what was applied: replaying them does not reproduce the states.

    ``expert_aim="tool"`` (reach) has the expert steer the tool centre, where success is
    measured, onto the goal instead of the observed hand (``SimArm.expert_action``).

    ``keys`` picks the observation keys written (default: ``state``, and ``image`` with
    ``image_size``): ``("image", "joints")`` is what a real arm gives, a camera and its joint
    states (``joints``: the 7 hinges and 2 finger slides, as sim_node publishes them), without
    the object and goal positions the 39-d state holds; ``proprio`` is the hand position and
    gripper opening cut from that state.
    """
    keys = _check_keys(keys, image_size)
    check_expert_task(task)
    check_expert_aim(task, expert_aim)
    episodes = check_count("episodes", episodes, 1)
    extra_steps = check_count("extra_steps", extra_steps, 0)
    if not 0.0 <= explore <= 1.0:
        raise ActJepaError(f"explore must lie in [0, 1] (a probability per tick), got {explore}")
    if not (0.0 <= dart_noise < float("inf")):
        raise ActJepaError(f"dart_noise must be a finite standard deviation >= 0 (action units), "
                           f"got {dart_noise}")
    if dart_noise and explore:
        raise ActJepaError("explore and dart_noise both set; expected one: explore records the "
                           "random actions it applies, dart_noise records the expert's")
    rng = np.random.default_rng(seed)
    arm = SimArm(task, seed=seed, image_size=image_size, max_steps=max_steps,
                 proprio="proprio" in keys, joints="joints" in keys,
                 cameras=key_cameras(keys) or (CAMERA,))
    solved = 0
    bar = progress_bar(total=episodes, desc=task, unit="ep", disable=not progress)
    try:
        for i in range(episodes):
            obs = arm.reset(i)
            rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
            actions: list[np.ndarray] = []
            stop = SuccessStop(extra_steps)
            while arm.steps < arm.max_steps:
                if not explore and stop.due(arm.steps):
                    break
                for key in keys:
                    rows[key].append(obs[key])
                random_tick = explore and rng.random() < explore
                if dart_noise:
                    label = arm.expert_action(expert_aim)
                    obs, success = arm.step(label + rng.normal(0.0, dart_noise, ACTION_DIM))
                else:
                    obs, success = arm.step(rng.uniform(ACTION_LOW, ACTION_HIGH, ACTION_DIM)
                                            if random_tick else arm.expert_action(expert_aim))
                    label = arm.last_action
                actions.append(label)
                stop.record(arm.steps, success)
            solved += stop.first_success is not None
            bar.update(1)
            bar.set_postfix(success=f"{solved}/{i + 1}")
            yield Episode(obs={k: np.stack(v) for k, v in rows.items()},
                          actions=np.stack(actions), success=stop.first_success is not None,
                          attrs={"task": task, "episode_index": i, "seed": arm.seed,
                                 "explore": explore, "dart_noise": dart_noise,
                                 "expert_aim": expert_aim})
    finally:
        bar.close()
        arm.close()
