"""Controllers from a frozen ACT-JEPA encoder: BC head, latent nearest neighbour, latent MPC."""
from actjepa_core.policies.base import Policy, load_policy, world_from_checkpoint
from actjepa_core.policies.bc import BCPolicy, train_bc  # registers "bc"
from actjepa_core.policies.nearest import NearestNeighbourPolicy, build_nn  # registers "nn"
from actjepa_core.policies.mpc import MPCConfig, MPCPolicy  # registers "mpc"

__all__ = ["Policy", "load_policy", "world_from_checkpoint"]
__all__ += ["BCPolicy", "train_bc", "NearestNeighbourPolicy", "build_nn"]
__all__ += ["MPCConfig", "MPCPolicy"]
