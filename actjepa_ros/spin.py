"""The ``main()`` of every node: init, make, spin, clean shutdown on SIGINT/SIGTERM.

SIGINT and SIGTERM do not shut ROS down under the node (rclpy's own handlers would, and whatever
the node logs while stopping, e.g. the recorder's "episode N: wrote ...", would then fail with
"Failed to publish log message to rosout: publisher's context is invalid" and reach stdout only).
They ask the spin loop to stop instead: the node logs "<signal>: shutting down", ``cleanup`` runs
while the context is still valid (a recorder closes its bag, a sim releases MuJoCo), and only then
are the node destroyed and ROS shut down. A second signal during ``cleanup`` sets
``StopSignals.hurry``, for cleanups that could wait (the recorder's conversions).

A start-up ActJepaError (bad parameters, bad task) is logged as one line and exits with code 2.
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Sequence, TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from actjepa_core.errors import ActJepaError

EXIT_BAD_START = 2
SPIN_STEP_S = 0.1  # how long a SIGINT/SIGTERM may wait for the executor to notice it
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
N = TypeVar("N", bound=Node)


class StopSignals:
    """SIGINT/SIGTERM as requests: the first sets ``stop``, a later one also ``hurry``."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.name = ""  # of the first signal

    def __call__(self, signum: int, frame: Any = None) -> None:
        if self.stop.is_set():
            self.hurry.set()
            return
        self.name = signal.Signals(signum).name
        self.stop.set()

    def install(self) -> Callable[[], None]:
        """Handle SIGINT and SIGTERM here; returns what puts the previous handlers back."""
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def spin_node(make: Callable[[], N], name: str, cleanup: Callable[[N], None] | None = None,
              args: Sequence[str] | None = None, signals: StopSignals | None = None) -> int:
    """Run the node ``make()`` builds until SIGINT/SIGTERM (or ROS shuts down); see the module
    docstring. ``signals`` lets ``cleanup`` see a second signal."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signals = signals or StopSignals()
    restore = signals.install()
    node = None
    try:
        node = make()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not signals.stop.is_set():
            executor.spin_once(timeout_sec=SPIN_STEP_S)
        if signals.stop.is_set():
            node.get_logger().info(f"{signals.name}: shutting down")
    except ActJepaError as err:
        get_logger(name).error(f"cannot start: {err}")
        return EXIT_BAD_START
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if cleanup is not None:
                try:
                    cleanup(node)
                except Exception as err:  # noqa: BLE001 - a failing cleanup must not hide the exit
                    node.get_logger().error(f"while shutting down: {type(err).__name__}: {err}")
            node.destroy_node()
        rclpy.try_shutdown()
        restore()
    return 0
