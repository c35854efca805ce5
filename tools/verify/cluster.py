"""What verify reads from a cluster, and the fields it picks out of what it read.

Kubernetes is read through `kubectl get -o json` only (kube_client). Every read is made once per run and
kept, its failure too: several checks look at the nodes, and the fleet status reads the controller the
controller check reads.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Hashable
from typing import Any

from kube_client import Kubectl, KubectlError, kubectl_get, kubectl_items
from stack_config import IPAddress

METALLB_NAMESPACE = "metallb-system"
CONTROLLER = "metallb-controller"
SPEAKER = "metallb-speaker"
# Fully qualified, so another API group's "ipaddresspools" cannot answer instead, and pinned to the
# version the program declares.
POOL_RESOURCE = "ipaddresspools.v1beta1.metallb.io"
ADVERTISEMENT_RESOURCE = "l2advertisements.v1beta1.metallb.io"
# Present with any value, it stops MetalLB 0.14.3's speaker on that node from announcing (not from running).
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# The chart's speaker pods (MetalLB 0.14.3's templates/speaker.yaml).
SPEAKER_PODS = "app.kubernetes.io/name=metallb,app.kubernetes.io/component=speaker"
ENDPOINT_SLICES = "endpointslices.v1.discovery.k8s.io"
# The label the EndpointSlice controller puts on a Service's slices.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class ClusterReads:
    """One cluster's answers, each asked for once.

    A read that failed only when its whole timeout ran out means the API server does not answer; the
    reads after it are not made, so a switched-off cluster costs one timeout, not one per check.
    """

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self._answers: dict[Hashable, Any] = {}
        self._silent: KubectlError | None = None

    def get(self, resource: str, namespace: str | None, name: str | None = None) -> Any:
        """As kube_client.kubectl_get: the object, a List when `name` is None, None when it does not exist."""
        return self._read(
            ("get", resource, namespace, name), lambda: kubectl_get(self.kubectl, resource, namespace, name)
        )

    def items(self, resource: str, namespace: str | None = None, selector: str | None = None) -> Any:
        """As kube_client.kubectl_items: the objects found, in every namespace when `namespace` is None."""
        return self._read(
            ("items", resource, namespace, selector),
            lambda: kubectl_items(
                self.kubectl,
                [resource],
                namespace=namespace,
                all_namespaces=namespace is None,
                selector=selector,
            ),
        )

    def nodes_or_error(self) -> Any:
        """The nodes List, or the KubectlError reading it raised, for checks that do without the nodes."""
        try:
            return self.get("nodes", None)
        except KubectlError as error:
            return error

    def _read(self, key: Hashable, ask: Callable[[], Any]) -> Any:
        if key not in self._answers:
            if self._silent is not None:
                raise KubectlError(
                    f"not asked: the API server did not answer an earlier read ({self._silent})"
                )
            started = time.monotonic()
            try:
                self._answers[key] = ask()
            except KubectlError as error:
                if time.monotonic() - started >= self.kubectl.timeout:
                    self._silent = error
                self._answers[key] = error
        answer = self._answers[key]
        if isinstance(answer, KubectlError):
            raise answer
        return answer


def field_at(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]…, or None where a step is missing or is no mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def items_by_name(listing: Any) -> dict[str, dict[str, Any]]:
    """A List's items by metadata.name."""
    items = listing.get("items") if isinstance(listing, dict) else None
    return {
        item["metadata"]["name"]: item
        for item in items or []
        if isinstance(field_at(item, "metadata", "name"), str)
    }


def is_ready(obj: Any) -> bool:
    """A pod or a node whose Ready condition is True."""
    return has_condition(obj, "Ready")


def has_exclusion_label(node: Any) -> bool:
    return EXCLUDE_LB_LABEL in (field_at(node, "metadata", "labels") or {})


def has_condition(obj: Any, kind: str) -> bool:
    """obj's condition `kind` is True (a node's NetworkUnavailable, say)."""
    conditions = field_at(obj, "status", "conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True" for c in conditions
    )


def matches_selector(obj: Any, selector: Any) -> bool:
    """A metav1.LabelSelector against obj's labels: every matchLabels pair and every matchExpressions
    requirement (In, NotIn, Exists, DoesNotExist) holds; an empty selector matches everything."""
    labels = field_at(obj, "metadata", "labels") or {}
    if not isinstance(selector, dict):
        return False
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }
        if not held.get(operator, False):
            return False
    return True


def is_serving(endpoint: Any) -> bool:
    """An EndpointSlice endpoint that serves, as MetalLB's speaker judges it (epslices.IsConditionServing:
    `serving`, else `ready`, where absent means true)."""
    conditions = field_at(endpoint, "conditions") or {}
    if conditions.get("serving") is not None:
        return bool(conditions["serving"])
    return conditions.get("ready") is not False


def service_ips(service: Any) -> list[IPAddress]:
    """The IPs in `.status.loadBalancer.ingress`, in order."""
    ips = []
    for entry in field_at(service, "status", "loadBalancer", "ingress") or []:
        try:
            ips.append(ipaddress.ip_address(entry.get("ip", "")))
        except (ValueError, AttributeError):
            continue
    return ips


def node_addresses(nodes: Any) -> dict[str, list[IPAddress]]:
    """Each node's InternalIP addresses, by node name."""
    found: dict[str, list[IPAddress]] = {}
    for name, node in items_by_name(nodes).items():
        for entry in field_at(node, "status", "addresses") or []:
            if isinstance(entry, dict) and entry.get("type") == "InternalIP":
                try:
                    found.setdefault(name, []).append(ipaddress.ip_address(entry.get("address", "")))
                except ValueError:
                    continue
    return found
