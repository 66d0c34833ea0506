"""Controllers from a frozen ACT-JEPA encoder: BC head, latent nearest neighbour, latent MPC."""
from .base import Policy, load_policy, world_from_checkpoint
from .bc import BCPolicy, train_bc  # registers "bc"
from .nearest import NearestNeighbourPolicy, build_nn  # registers "nn"
from .mpc import MPCConfig, MPCPolicy  # registers "mpc"

__all__ = ["Policy", "load_policy", "world_from_checkpoint"]
__all__ += ["BCPolicy", "train_bc", "NearestNeighbourPolicy", "build_nn"]
__all__ += ["MPCConfig", "MPCPolicy"]
