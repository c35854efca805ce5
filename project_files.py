"""Which stacks the project has: one `Pulumi.<stack>.yaml` each.

Standard library only, so that tools.drift can list stacks on a CI runner that has no Pulumi SDK
installed; the program's overlap check, the tests and the tools all count stacks the same way.
"""

from __future__ import annotations

from pathlib import Path


def stack_names(project_dir: Path) -> list[str]:
    """Every stack with a committed `Pulumi.<stack>.yaml`, sorted."""
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))
