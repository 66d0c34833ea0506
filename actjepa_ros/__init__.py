"""ROS 2 side of actjepa: thin rclpy nodes around :mod:`actjepa_core`.

Each node converts messages to and from numpy, declares its parameters, keeps
its own timing and safety checks, and leaves learning to ``actjepa_core``.
Nodes start with ``ros2 run actjepa_ros <node>`` on a ROS install, or as the
console scripts of the same name from a virtual environment that holds the
ROS 2 Python wheels.
"""
