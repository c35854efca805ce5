"""kind-dev's configuration and what its cluster answered (recorded API responses), as verify's tests use
them."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from stack_config import load_stack_file_config
from tests.program import PROJECT_DIR

RECORDED = Path(__file__).resolve().parent.parent / "recorded_api"
KIND_DEV = load_stack_file_config(PROJECT_DIR, "kind-dev")
BEAM00 = load_stack_file_config(PROJECT_DIR, "beam00")
assert KIND_DEV.bootstrap is not None
BOOTSTRAP = KIND_DEV.bootstrap
PINNED = ipaddress.ip_address("192.168.129.51")


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())
