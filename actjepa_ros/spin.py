"""The ``main()`` of every node: init, make, spin, clean shutdown on SIGINT/SIGTERM.

A start-up ActJepaError (bad parameters, bad task) is logged as one line and exits with code 2;
``cleanup`` runs whatever happens, so a recorder closes its bag and a sim releases MuJoCo.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node

from actjepa_core.errors import ActJepaError

EXIT_BAD_START = 2
N = TypeVar("N", bound=Node)


def spin_node(make: Callable[[], N], name: str, cleanup: Callable[[N], None] | None = None,
              args: Sequence[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = make()
        rclpy.spin(node)
    except ActJepaError as err:
        get_logger(name).error(f"cannot start: {err}")
        return EXIT_BAD_START
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if cleanup is not None:
                cleanup(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
