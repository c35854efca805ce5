"""The clusters our users have, as objects to seed a fake API server with.

- `runbook_install()`: the runbook's MetalLB, every object of the upstream v0.14.3 native manifest as
  `kubectl apply` leaves it (read from ../shared/upstream; callers skip without it), its workloads
  running, plus `lan-pool` and `lan-advertisement` as the runbook applied them.
- `chart_install()`: MetalLB from the chart, as `helm install metallb metallb/metallb` leaves it (Helm's
  annotations and release record), or as this program leaves it (the stack's marks instead). Names and
  labels follow the chart's templates and helpers in ../shared/upstream.
- the rest of a cluster: nodes, the bootstrap Service, pools, advertisements, a foreign ConfigMap.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

import resource_names
from metallb_survey import ObjectRef
from tests.upstream import UPSTREAM_DIR

NAMESPACE = "metallb-system"
RUNBOOK_POOL_RANGE = "192.168.129.50-192.168.129.60"
RUNBOOK_CONTROLLER_UID = "0b6c56f4-6f5e-4c5e-9d2a-1f1e00c0ffee"
# What a stack declares by default, as `helm install --set speaker.frr.enabled=false` gives it.
STACK_VALUES = {"speaker": {"frr": {"enabled": False}}}


def _upstream_documents(path: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((UPSTREAM_DIR / path).read_text()) if doc]


def crds() -> list[dict[str, Any]]:
    return [
        doc
        for name in sorted((UPSTREAM_DIR / "crds").iterdir())
        for doc in _upstream_documents(f"crds/{name.name}")
    ]


def _running(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload as its controller reports it once its one pod (one node) is ready."""
    generation = obj["metadata"].get("generation", 1)
    if obj["kind"] == "Deployment":
        obj["spec"].setdefault("replicas", 1)  # the API server's default
        obj["status"] = {
            "observedGeneration": generation,
            "replicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "updatedReplicas": 1,
        }
    elif obj["kind"] == "DaemonSet":
        obj["status"] = {
            "observedGeneration": generation,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "updatedNumberScheduled": 1,
        }
    return obj


def pending(obj: dict[str, Any]) -> dict[str, Any]:
    """A DaemonSet whose pod cannot start (its host ports are taken): scheduled nowhere ready."""
    pending_obj = copy.deepcopy(obj)
    pending_obj["status"] = {**pending_obj.get("status", {}), "numberReady": 0, "numberAvailable": 0}
    return pending_obj


def pool(name: str, *addresses: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": dict(annotations or {})},
        "spec": {"addresses": list(addresses), "autoAssign": True, "avoidBuggyIPs": False},
    }


def advertisement(name: str, *pools: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": dict(annotations or {})},
        "spec": {"ipAddressPools": list(pools)},
    }


def runbook_install() -> list[dict[str, Any]]:
    """The native manifest applied with kubectl, running, and the runbook's pool and advertisement."""
    objects = [_running(doc) for doc in _upstream_documents("metallb-native.yaml")]
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet"):
            obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
        if (obj["kind"], obj["metadata"]["name"]) == ("Deployment", "controller"):
            obj["metadata"]["uid"] = RUNBOOK_CONTROLLER_UID
    return [
        *objects,
        pool("lan-pool", RUNBOOK_POOL_RANGE),
        advertisement("lan-advertisement", "lan-pool"),
        # Made by the runbook's controller at run time, not by the manifest, and owned by its Deployment
        # (MetalLB 0.14.3's CreateMlSecret).
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": "memberlist",
                "namespace": NAMESPACE,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "controller",
                        "uid": RUNBOOK_CONTROLLER_UID,
                    }
                ],
            },
            "data": {"secretkey": base64.b64encode(b"not a real key").decode()},
        },
    ]


_TEMPLATE_NAMES = {
    r'{{ (template|include) "metallb.fullname" . }}': "{fullname}",
    r'{{ (template|include) "metallb.controller.serviceAccountName" . }}': "{fullname}-controller",
    r'{{ (template|include) "metallb.speaker.serviceAccountName" . }}': "{fullname}-speaker",
}


def chart_objects(release: str = "metallb") -> list[tuple[str, str, str, bool]]:
    """(apiVersion, kind, name, namespaced) of what the chart's templates render with FRR off."""
    fullname = release if "metallb" in release else f"{release}-metallb"
    rendered = []
    for template in sorted((UPSTREAM_DIR / "chart-templates").glob("*.yaml")):
        for chunk in re.split(r"^---\s*$", template.read_text(), flags=re.M):
            kind = re.search(r"^kind:\s*(\S+)", chunk, re.M)
            api_version = re.search(r"^apiVersion:\s*(\S+)", chunk, re.M)
            name = re.search(r"^metadata:\s*\n(?:\s+.*\n)*?  name:\s*(.+)$", chunk, re.M)
            if not (kind and api_version and name):
                continue
            text = name.group(1).strip()
            for pattern, replacement in _TEMPLATE_NAMES.items():
                text = re.sub(pattern, replacement.format(fullname=fullname), text)
            if "frr" in text:
                continue
            namespaced = bool(re.search(r"^  namespace:", chunk, re.M))
            rendered.append((api_version.group(1), kind.group(1), text, namespaced))
    return rendered


def helm_record(
    release: str,
    revision: int,
    status: str = "deployed",
    *,
    chart_version: str = "0.14.3",
    values: Mapping[str, Any] | None = None,
    chart: str = "metallb",
) -> dict[str, Any]:
    """Helm 3's record of one revision: a Secret holding base64(gzip(JSON)), base64'd again by the API."""
    body = {
        "name": release,
        "namespace": NAMESPACE,
        "version": revision,
        "info": {"status": status},
        "chart": {"metadata": {"name": chart, "version": chart_version, "appVersion": f"v{chart_version}"}},
        "config": dict(values or {}),
        "manifest": "",
    }
    encoded = base64.b64encode(gzip.compress(json.dumps(body).encode()))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "namespace": NAMESPACE,
            "labels": {"name": release, "owner": "helm", "status": status, "version": str(revision)},
        },
        "data": {"release": base64.b64encode(encoded).decode()},
    }


def pulumi_type(obj: Mapping[str, Any]) -> str:
    """The Pulumi type pulumi-kubernetes gives an object: kubernetes:<group or core>/<version>:<kind>."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def chart_install(
    *,
    release: str = "metallb",
    version: str = "0.14.3",
    helm: bool = True,
    stack: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The chart's objects, running, with Helm's annotations (helm=True) and/or the marks a stack
    (`project/stack`) puts on what it installs (resource_names' URNs, as the program gives them). `values`
    are what the release was given (`helm install` with none: the chart's defaults, FRR on)."""
    labels = {
        "helm.sh/chart": f"metallb-{version}",
        "app.kubernetes.io/name": "metallb",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/version": f"v{version}",
        "app.kubernetes.io/managed-by": "Helm",
    }
    annotations: dict[str, str] = {}
    if helm:
        annotations |= {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": NAMESPACE}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *crds(),
    ]
    for api_version, kind, name, namespaced in chart_objects(release):
        obj: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": name,
                **({"namespace": NAMESPACE} if namespaced else {}),
                "labels": dict(labels),
                "annotations": dict(annotations),
            },
        }
        if kind in ("Deployment", "DaemonSet"):
            role = "controller" if kind == "Deployment" else "speaker"
            obj["metadata"]["labels"]["app.kubernetes.io/component"] = role
            obj["spec"] = {
                "selector": {
                    "matchLabels": {"app.kubernetes.io/name": "metallb", "app.kubernetes.io/component": role}
                },
                "template": {
                    "spec": {"containers": [{"name": role, "image": f"quay.io/metallb/{role}:v{version}"}]}
                },
            }
            obj = _running(obj)
        if kind == "Service":
            obj["spec"] = {
                "selector": {"app.kubernetes.io/component": "controller"},
                "ports": [{"port": 443}],
            }
        if kind == "Secret":
            obj["type"] = "Opaque"
        objects.append(obj)
    if stack is not None:
        chart = resource_names.chart(resource_names.METALLB)
        for obj in objects:
            metadata = obj["metadata"]
            ref = ObjectRef(obj["kind"], metadata.get("namespace"), metadata["name"])
            if obj["kind"] == "Namespace":
                types = [resource_names.METALLB_TYPE, resource_names.KIND_TYPES["Namespace"]]
                name = resource_names.namespace(resource_names.METALLB)
            else:
                types = [resource_names.METALLB_TYPE, resource_names.CHART_TYPE, pulumi_type(obj)]
                name = resource_names.chart_child(chart, ref)
            resource = resource_names.urn(stack, types, name)
            metadata["annotations"] = {
                **metadata.get("annotations", {}),
                **resource_names.marks(stack, resource),
            }
    if helm:
        objects += [
            helm_record(release, 1, "superseded", chart_version=version, values=values),
            helm_record(release, 2, "deployed", chart_version=version, values=values),
        ]
    return objects


def node(name: str = "macula-dev-control-plane") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }


def foreign_configmap(name: str = "team-notes") -> dict[str, Any]:
    """Somebody else's ConfigMap in metallb-system, which no takeover may touch."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "metallb"}},
        "data": {"owner": "network team"},
    }


def bootstrap_service(ip: str = "192.168.129.51") -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "macula"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "macula-bootstrap", "namespace": "macula"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "macula-bootstrap"},
                "ports": [
                    {"name": "quic", "port": 4433, "protocol": "UDP", "targetPort": 4433},
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
                ],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}},
        },
    ]
