"""rosbag2 demonstrations -> the episodes file training reads (`actjepa convert`).

``config`` says which topic fills which observation key and which is the action; ``reader`` opens
bags with the `rosbags` library (no ROS runtime); ``sync`` resamples the streams into control
ticks; ``decoders`` and ``convert`` turn the messages the ticks use into episodes; ``summary``
reports what happened; ``writer`` writes bags (the recorder node, tests) through ``mcap``'s
storage writers (chunk CRCs, periodic flushes); ``recover`` (with ``mcap_read``) gives back what
an unfinished bag holds.
"""
from actjepa_core.bags.config import ConvertConfig, convert_config_from_dict, load_convert_config
from actjepa_core.bags.convert import BagReport, ConvertResult, convert_bags, write_result
from actjepa_core.bags.reader import BagError, find_bags
from actjepa_core.bags.summary import format_summary

__all__ = ["BagError", "BagReport", "ConvertConfig", "ConvertResult", "convert_bags",
           "convert_config_from_dict", "find_bags", "format_summary", "load_convert_config",
           "write_result"]
