"""ACT-JEPA networks: observation/action encoders, the action-conditioned predictor, the world model."""
from .encoders import ActionEncoder, ImageEncoder, ObservationEncoder, StateEncoder, mlp
from .predictor import Predictor
from .world_model import ACTJEPA, StepLoss

__all__ = ["ACTJEPA", "ActionEncoder", "ImageEncoder", "ObservationEncoder", "Predictor",
           "StateEncoder", "StepLoss", "mlp"]
