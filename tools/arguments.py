"""Command-line values the tools share. Standard library only: tools.drift runs on CI runners without the
project installed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type for a number of seconds from `low` to `high`: decimal and finite (`nan`, `inf`
    and out-of-range values are refused, so exit 2 with the reason)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def add_kubectl_timeout(parser: argparse.ArgumentParser, default: float) -> None:
    """--kubectl-timeout S: how long each kubectl call may take (1 to 600 seconds)."""
    parser.add_argument(
        "--kubectl-timeout",
        metavar="S",
        type=seconds(1, 600),
        default=default,
        help=f"seconds each kubectl call may take (default {default:g})",
    )
