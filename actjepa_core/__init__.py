"""ACT-JEPA core: data, model, training and policies. Pure Python + torch; never imports ROS."""

__version__ = "0.1.0"
