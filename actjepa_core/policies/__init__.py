"""Controllers from a frozen ACT-JEPA encoder: BC head, latent nearest neighbour, latent MPC;
and the camera policy trained end to end (e2e).

``Policy.registry`` maps each policy type to its class; every class names its config class and
makes itself with ``build(world, demos, config)``; ``load_policy`` reads any policy file.
"""
from actjepa_core.policies.base import Policy, load_policy, policy_class, policy_config
from actjepa_core.policies.bc import BCPolicy  # registers "bc"
from actjepa_core.policies.end_to_end import EndToEndPolicy  # registers "e2e"
from actjepa_core.policies.mpc import MPCConfig, MPCPolicy  # registers "mpc"
from actjepa_core.policies.nearest import NearestNeighbourPolicy  # registers "nn"
from actjepa_core.policies.world import FrozenWorld

__all__ = ["FrozenWorld", "Policy", "load_policy", "policy_class", "policy_config"]
__all__ += ["BCPolicy", "EndToEndPolicy", "NearestNeighbourPolicy", "MPCConfig", "MPCPolicy"]
