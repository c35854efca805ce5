"""Values that come from config set with `pulumi config set --secret` stay secrets wherever they go."""

from __future__ import annotations

from typing import Any

import pulumi


def kept_secret(value: Any, secret: bool) -> Any:
    """`value` as a secret Output when `secret`, else `value` as it is."""
    return pulumi.Output.secret(value) if secret else value
