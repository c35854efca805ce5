"""The names and types the program gives its resources, in one place.

Pulumi knows a resource by its URN: the stack, the project, the types of its parents and its own, and
its name. So does the rename guard in `takeover_plan`: every object the program declares carries the
URN of the resource that manages it (`metallb_survey.MARK_RESOURCE`), and the guard compares it with the
URN the program is about to declare the object under. `__main__` names its components with these
constants, the components name and type their children with these, and `tools.survey` predicts the
URNs without running the program.
"""

from __future__ import annotations

from collections.abc import Sequence

from metallb_survey import MARK_RESOURCE, MARK_STACK, ObjectRef

METALLB = "metallb"
# The chart's release name, which the chart's object names derive from (metallb-controller, ...).
RELEASE_NAME = "metallb"
ADDRESS_POOLS = "address-pools"

METALLB_TYPE = "macula:lan:MetalLB"
ADDRESS_POOLS_TYPE = "macula:lan:L2AddressPools"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
# The Pulumi type of each kind of Kubernetes object the program declares.
KIND_TYPES = {
    "Namespace": "kubernetes:core/v1:Namespace",
    "ConfigMap": "kubernetes:core/v1:ConfigMap",
    "Secret": "kubernetes:core/v1:Secret",
    "Deployment": "kubernetes:apps/v1:Deployment",
    "DaemonSet": "kubernetes:apps/v1:DaemonSet",
    "CustomResourceDefinition": "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
    "ValidatingWebhookConfiguration": (
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration"
    ),
    "IPAddressPool": "kubernetes:metallb.io/v1beta1:IPAddressPool",
    "L2Advertisement": "kubernetes:metallb.io/v1beta1:L2Advertisement",
}


def urn(stack_mark: str, types: Sequence[str], name: str) -> str:
    """A resource's URN in the stack `project/stack`, from its parents' types and its own, outermost first."""
    project, _, stack = stack_mark.partition("/")
    return f"urn:pulumi:{stack}::{project}::{'$'.join(types)}::{name}"


def marks(stack_mark: str, resource_urn: str) -> dict[str, str]:
    """Annotations that tell the takeover survey which stack, and which of its resources, manage an object."""
    return {MARK_STACK: stack_mark, MARK_RESOURCE: resource_urn}


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


def runbook_webhook_entry(component: str) -> str:
    return f"{component}-runbook-webhook-entry"


def helm_release_record(component: str) -> str:
    return f"{component}-forget-helm-release"
