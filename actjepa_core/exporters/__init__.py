"""The episodes file -> datasets other tools read (`actjepa export FORMAT EPISODES --out DIR`).

One module per format: ``lerobot`` (a LeRobotDataset v3.0 folder: parquet frames, mp4 videos
written with PyAV). Each writes into a temporary folder beside the output and renames it only
when complete, so a failed export never leaves a half-written dataset under the final name.
"""
from __future__ import annotations

from actjepa_core.exporters.lerobot import ExportOptions, ExportResult, export_lerobot

__all__ = ["ExportOptions", "ExportResult", "export_lerobot"]
