"""The one way a study's runner ends: an ActJepaError is one line and exit 2, an interrupt exit
130 (a rerun resumes from the results file)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from actjepa_core.errors import ActJepaError

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def run_main(parser: argparse.ArgumentParser, study: Callable[[argparse.Namespace], None],
             command: str, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run ``study`` with it; the exit code."""
    args = parser.parse_args(argv)
    try:
        study(args)
    except ActJepaError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
