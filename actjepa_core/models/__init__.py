"""ACT-JEPA networks: observation/action encoders, the action-conditioned predictor, the world
model, and the decoders of the reconstruction baselines."""
from actjepa_core.models.encoders import (
           ActionEncoder,
           ImageEncoder,
           ObservationEncoder,
           StateEncoder,
           mlp,
)
from actjepa_core.models.predictor import Predictor
from actjepa_core.models.world_model import ACTJEPA, StepLoss

__all__ = ["ACTJEPA", "ActionEncoder", "ImageEncoder", "ObservationEncoder", "Predictor",
           "StateEncoder", "StepLoss", "mlp"]
