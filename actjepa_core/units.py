"""Unit conversions shared by the core and the nodes (ROS stamps are in nanoseconds)."""
NS_PER_S = 1_000_000_000
MS_PER_S = 1000.0
