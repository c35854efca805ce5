"""The names the program gives its resources, in one place.

Pulumi knows a resource by its name, and so does the rename guard in `takeover_plan`: every object the
program declares carries the name of the resource that manages it (`metallb_survey.MARK_RESOURCE`), and
the guard compares it with the name the program is about to declare the object under. `__main__` names
its components with these constants, the components name their children with these functions, and
`tools.survey` predicts both without running the program.
"""

from __future__ import annotations

from metallb_survey import MARK_RESOURCE, MARK_STACK, ObjectRef

METALLB = "metallb"
ADDRESS_POOLS = "address-pools"


def marks(stack_mark: str, resource_name: str) -> dict[str, str]:
    """Annotations that tell the takeover survey which stack, and which of its resources, manage an object."""
    return {MARK_STACK: stack_mark, MARK_RESOURCE: resource_name}


def namespace(component: str) -> str:
    return f"{component}-namespace"


def chart(component: str) -> str:
    return f"{component}-chart"


def chart_child(chart_name: str, ref: ObjectRef) -> str:
    """What pulumi-kubernetes names a Chart v4 child: `<chart>:<namespace>/<name>`, or `<chart>:<name>`."""
    return f"{chart_name}:{ref.namespace}/{ref.name}" if ref.namespace else f"{chart_name}:{ref.name}"


def pool(component: str, pool_name: str) -> str:
    return f"{component}-{pool_name}"


def advertisement(component: str, advertisement_name: str) -> str:
    return f"{component}-{advertisement_name}"


def runbook_handover(component: str) -> str:
    return f"{component}-runbook-handover"


def helm_release_record(component: str) -> str:
    return f"{component}-forget-helm-release"
