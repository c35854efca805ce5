"""What MetalLB a cluster already runs, read before the program declares anything.

Read-only: a handful of `kubectl get` calls and nothing else. It finds every MetalLB controller and
speaker in the cluster (by image, whatever their labels), tells how each was installed, and collects
what a takeover would touch:

- the objects the runbook's native manifest (`config/manifests/metallb-native.yaml` of v0.14.3) creates
  under names of its own, recognised by name and by the labels (or, for its unlabelled Service, the
  selector) the manifest gives them;
- the objects that carry the same name in the manifest, in the chart and in the stack file: the
  namespace, the CRDs, the webhook configuration, the excludel2 ConfigMap, the webhook's certificate
  Secret, the pools and the advertisements;
- Helm's release records of MetalLB, decoded (chart, version, status, name overrides);
- the program's own marks: every object the program declares carries the stack and the resource that
  manage it (`MARK_STACK`, `MARK_RESOURCE`), so "this stack already manages it" is read off the cluster.

It decides nothing; `takeover_plan` does. It reads Secrets by their metadata only, except Helm's release
records.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kube_client import Kubectl, kubectl_items, kubectl_metadata

NAMESPACE = "metallb-system"
# The program's marks on everything it declares: which stack, and which resource of it, manages the object.
MARK_STACK = "lan.macula.io/stack"
MARK_RESOURCE = "lan.macula.io/resource"
# What `helm install` writes on every object of a release.
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
HELM_RECORD_SELECTOR = "owner=helm"


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One Kubernetes object, by kind, namespace (None when cluster-scoped) and name."""

    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class KnownObject:
    """An object of a known install: the kubectl resource to ask for, its identity and its labels."""

    resource: str
    ref: ObjectRef
    labels: Mapping[str, str] = field(default_factory=dict)


def _native(resource: str, kind: str, name: str, namespaced: bool = True, **labels: str) -> KnownObject:
    return KnownObject(resource, ObjectRef(kind, NAMESPACE if namespaced else None, name), labels)


# The native manifest's own objects, each with the labels it carries there. The chart's counterparts are
# named metallb-*; scripts/take-over-metallb.sh removes exactly these.
NATIVE_OBJECTS = (
    _native("deployments.apps", "Deployment", "controller", app="metallb", component="controller"),
    _native("daemonsets.apps", "DaemonSet", "speaker", app="metallb", component="speaker"),
    _native("serviceaccounts", "ServiceAccount", "controller", app="metallb"),
    _native("serviceaccounts", "ServiceAccount", "speaker", app="metallb"),
    _native("roles.rbac.authorization.k8s.io", "Role", "controller", app="metallb"),
    _native("roles.rbac.authorization.k8s.io", "Role", "pod-lister", app="metallb"),
    _native("rolebindings.rbac.authorization.k8s.io", "RoleBinding", "controller", app="metallb"),
    _native("rolebindings.rbac.authorization.k8s.io", "RoleBinding", "pod-lister", app="metallb"),
    _native(
        "clusterroles.rbac.authorization.k8s.io",
        "ClusterRole",
        "metallb-system:controller",
        False,
        app="metallb",
    ),
    _native(
        "clusterroles.rbac.authorization.k8s.io",
        "ClusterRole",
        "metallb-system:speaker",
        False,
        app="metallb",
    ),
    _native(
        "clusterrolebindings.rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "metallb-system:controller",
        False,
        app="metallb",
    ),
    _native(
        "clusterrolebindings.rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "metallb-system:speaker",
        False,
        app="metallb",
    ),
    # Unlabelled in the manifest; recognised by its selector instead (see _is_native).
    _native("services", "Service", "webhook-service"),
)
NATIVE_SERVICE_SELECTOR = {"component": "controller"}
# The manifest's BGPPeer webhook in the shared webhook configuration; the chart's is bgppeervalidationwebhook.
NATIVE_WEBHOOK_ENTRY = "bgppeersvalidationwebhook.metallb.io"
WEBHOOK_CONFIGURATION = ObjectRef("ValidatingWebhookConfiguration", None, "metallb-webhook-configuration")

CRD_NAMES = (
    "bfdprofiles.metallb.io",
    "bgpadvertisements.metallb.io",
    "bgppeers.metallb.io",
    "communities.metallb.io",
    "ipaddresspools.metallb.io",
    "l2advertisements.metallb.io",
)
# Same name in the native manifest and in the chart (release `metallb`): taken over, never removed.
SHARED_OBJECTS = (
    KnownObject("namespaces", ObjectRef("Namespace", None, NAMESPACE)),
    *(
        KnownObject(
            "customresourcedefinitions.apiextensions.k8s.io", ObjectRef("CustomResourceDefinition", None, n)
        )
        for n in CRD_NAMES
    ),
    KnownObject(
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        ObjectRef("ValidatingWebhookConfiguration", None, "metallb-webhook-configuration"),
    ),
    KnownObject("configmaps", ObjectRef("ConfigMap", NAMESPACE, "metallb-excludel2")),
    KnownObject("secrets", ObjectRef("Secret", NAMESPACE, "webhook-server-cert")),
)
# The chart's workloads for release `metallb`, which the program installs.
CHART_CONTROLLER = ObjectRef("Deployment", NAMESPACE, "metallb-controller")
CHART_SPEAKER = ObjectRef("DaemonSet", NAMESPACE, "metallb-speaker")
CHART_NAME_LABEL = "app.kubernetes.io/name"
# What Kubernetes puts in every namespace by itself.
NAMESPACE_DEFAULTS = frozenset(
    {ObjectRef("ServiceAccount", NAMESPACE, "default"), ObjectRef("ConfigMap", NAMESPACE, "kube-root-ca.crt")}
)
# Made at run time by the native controller (METALLB_ML_SECRET_NAME), not by the manifest, and owned by
# its Deployment: it goes when that goes.
NATIVE_MEMBERLIST_SECRET = ObjectRef("Secret", NAMESPACE, "memberlist")

_WORKLOAD_IMAGE = re.compile(r"(^|/)metallb/(controller|speaker)(:(?P<tag>[^@/]+))?(@.*)?$")
_VERSION_TAG = re.compile(r"^v?(\d+\.\d+\.\d+.*)$")


@dataclass(frozen=True)
class FoundObject:
    """An object as the cluster has it: identity, labels, annotations and the few fields a report needs."""

    ref: ObjectRef
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # A pool's addresses or an advertisement's pools, for the report.
    detail: str = ""
    # The objects in the same namespace that own it (metadata.ownerReferences).
    owners: tuple[ObjectRef, ...] = ()

    @property
    def stack(self) -> str | None:
        return self.annotations.get(MARK_STACK)

    @property
    def resource(self) -> str | None:
        return self.annotations.get(MARK_RESOURCE)


@dataclass(frozen=True)
class Workload:
    """A MetalLB controller or speaker running in the cluster."""

    found: FoundObject
    role: str  # "controller" or "speaker"
    image: str
    version: str | None


@dataclass(frozen=True)
class HelmRelease:
    """A Helm release, from its newest record (Secret or ConfigMap)."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str | None
    chart_version: str | None
    records: tuple[ObjectRef, ...]
    # Values that rename the chart's objects (fullnameOverride, nameOverride), which a takeover cannot follow.
    name_overrides: Mapping[str, str] = field(default_factory=dict)
    # Every value given to the release (`helm get values`), flattened to dotted paths.
    values: Mapping[str, Any] = field(default_factory=dict)
    # Why the newest record could not be read, if it could not.
    unreadable: str | None = None


@dataclass(frozen=True)
class ClusterSurvey:
    context: str
    namespace: FoundObject | None
    # The shared objects present (the namespace among them) and the chart's own workload objects present.
    shared: tuple[FoundObject, ...]
    workloads: tuple[Workload, ...]
    native: tuple[FoundObject, ...]
    # Entries of the shared webhook configuration that only the runbook's install has, still pointing at
    # its Service.
    native_webhook_entries: tuple[str, ...]
    # What the runbook's workloads own (the memberlist Secret), which goes when they go.
    native_dependents: tuple[FoundObject, ...]
    helm_releases: tuple[HelmRelease, ...]
    pools: tuple[FoundObject, ...]
    advertisements: tuple[FoundObject, ...]
    # The chart's other objects in the namespace (labelled app.kubernetes.io/name=metallb): a Helm
    # release's, or this stack's own.
    chart_objects: tuple[FoundObject, ...]
    # Everything else that lives in the namespace, which nothing here touches.
    others: tuple[ObjectRef, ...]

    @property
    def empty(self) -> bool:
        return not (self.shared or self.workloads or self.native or self.helm_releases or self.pools)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def found_object(obj: Mapping[str, Any], detail: str = "") -> FoundObject:
    metadata = _metadata(obj)
    namespace = metadata.get("namespace")
    owners = tuple(
        ObjectRef(str(owner.get("kind")), namespace, str(owner.get("name")))
        for owner in metadata.get("ownerReferences") or []
        if isinstance(owner, Mapping)
    )
    return FoundObject(
        ObjectRef(str(obj.get("kind", "?")), namespace, str(metadata.get("name", "?"))),
        _string_map(metadata.get("labels")),
        _string_map(metadata.get("annotations")),
        detail,
        owners,
    )


def _is_native(known: KnownObject, obj: Mapping[str, Any]) -> bool:
    if _metadata(obj).get("ownerReferences"):
        return False  # an operator's MetalLB, say: the manifest's objects have no owner
    labels = _string_map(_metadata(obj).get("labels"))
    if any(labels.get(key) != value for key, value in known.labels.items()):
        return False
    if known.ref.kind == "Service":
        spec = obj.get("spec")
        return isinstance(spec, Mapping) and _string_map(spec.get("selector")) == NATIVE_SERVICE_SELECTOR
    return True


def image_version(image: str) -> str | None:
    """`quay.io/metallb/controller:v0.14.3` → `0.14.3`; None for a digest-only or unversioned image."""
    match = _WORKLOAD_IMAGE.search(image)
    tag = match.group("tag") if match else None
    version = _VERSION_TAG.match(tag) if tag else None
    return version.group(1) if version else None


def _workload(obj: Mapping[str, Any]) -> Workload | None:
    template = _mapping(_mapping(_mapping(obj.get("spec")).get("template")).get("spec"))
    for container in template.get("containers") or []:
        image = str(container.get("image", ""))
        match = _WORKLOAD_IMAGE.search(image)
        if match:
            found = found_object(obj)
            version = (
                image_version(image) or found.labels.get("app.kubernetes.io/version", "").lstrip("v") or None
            )
            return Workload(found, match.group(2), image, version)
    return None


def decode_helm_record(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A Helm 3 release record's `release` field: base64 (twice in a Secret), then gzip, then JSON."""
    payload = str(data.get("release", ""))
    raw = base64.b64decode(payload)
    if kind == "Secret":
        raw = base64.b64decode(raw)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    release = json.loads(raw)
    if not isinstance(release, dict):
        raise ValueError("the record holds no release object")
    return release


def _helm_releases(records: Sequence[Mapping[str, Any]]) -> list[HelmRelease]:
    by_release: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        metadata = _metadata(record)
        labels = _string_map(metadata.get("labels"))
        if labels.get("owner") != "helm" or "name" not in labels:
            continue
        by_release.setdefault((str(metadata.get("namespace")), labels["name"]), []).append(record)
    releases = []
    for (namespace, name), found in sorted(by_release.items()):

        def revision(record: Mapping[str, Any]) -> int:
            text = _string_map(_metadata(record).get("labels")).get("version", "0")
            return int(text) if text.isdigit() else 0

        found.sort(key=revision)
        newest = found[-1]
        refs = tuple(found_object(record).ref for record in found)
        labels = _string_map(_metadata(newest).get("labels"))
        try:
            release = decode_helm_record(str(newest.get("kind")), newest.get("data") or {})
        except (ValueError, binascii.Error, OSError, EOFError) as error:
            releases.append(
                HelmRelease(
                    name, namespace, revision(newest), labels.get("status", "unknown"), None, None, refs,
                    unreadable=f"{found_object(newest).ref} cannot be decoded ({error})",
                )
            )  # fmt: skip
            continue
        chart = _mapping(_mapping(release.get("chart")).get("metadata"))
        values = _mapping(release.get("config"))
        overrides = {key: str(values[key]) for key in ("fullnameOverride", "nameOverride") if values.get(key)}
        info = _mapping(release.get("info"))
        releases.append(
            HelmRelease(
                name=name,
                namespace=namespace,
                revision=revision(newest),
                status=str(info.get("status") or labels.get("status", "unknown")),
                chart=chart.get("name"),
                chart_version=chart.get("version"),
                records=refs,
                name_overrides=overrides,
                values=flatten(values),
            )
        )
    return releases


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested values as dotted paths: {"speaker": {"frr": {"enabled": x}}} → {"speaker.frr.enabled": x}.

    Empty maps and nulls are left out: to Helm they set nothing (`--set key=null` deletes the key).
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        elif value is not None:
            flat[path] = value
    return flat


def _detail(obj: Mapping[str, Any]) -> str:
    spec = _mapping(obj.get("spec"))
    if obj.get("kind") == "IPAddressPool":
        return ", ".join(map(str, spec.get("addresses") or [])) or "no addresses"
    pools = spec.get("ipAddressPools") or []
    return f"pools: {', '.join(map(str, pools))}" if pools else "pools: every pool"


def survey_cluster(kubectl: Kubectl) -> ClusterSurvey:
    """Read what the cluster behind `kubectl` runs of MetalLB. Raises KubectlError when it cannot ask."""
    namespace = NAMESPACE
    cluster_scoped = [known for known in (*SHARED_OBJECTS, *NATIVE_OBJECTS) if known.ref.namespace is None]
    named = kubectl_items(kubectl, [f"{known.resource}/{known.ref.name}" for known in cluster_scoped])
    by_ref: dict[ObjectRef, Mapping[str, Any]] = {found_object(obj).ref: obj for obj in named}

    workloads = []
    for obj in kubectl_items(kubectl, ["deployments.apps,daemonsets.apps"], all_namespaces=True):
        workload = _workload(obj)
        if workload is not None:
            workloads.append(workload)
        ref = found_object(obj).ref
        if ref.namespace == namespace:
            by_ref[ref] = obj

    namespace_present = ObjectRef("Namespace", None, namespace) in by_ref
    in_namespace: list[dict[str, Any]] = []
    helm_secrets: list[dict[str, Any]] = []
    if namespace_present:
        in_namespace = kubectl_items(
            kubectl,
            [
                "serviceaccounts,services,configmaps,"
                "roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io"
            ],
            namespace=namespace,
        )
        # Secrets by their metadata only (the webhook's private key lives in one), except Helm's records,
        # which are read whole to tell what release they hold.
        in_namespace += [
            {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
            for metadata in kubectl_metadata(kubectl, "secrets", namespace)
        ]
        helm_secrets = kubectl_items(kubectl, ["secrets"], namespace=namespace, selector=HELM_RECORD_SELECTOR)
        by_ref.update({found_object(obj).ref: obj for obj in in_namespace})

    # Helm keeps release records beside the release; a MetalLB installed by Helm elsewhere says where.
    record_namespaces = {
        workload.found.annotations.get(HELM_RELEASE_NAMESPACE, workload.found.ref.namespace)
        for workload in workloads
        if HELM_RELEASE_NAME in workload.found.annotations
    } - {namespace}
    records = [*helm_secrets, *(obj for obj in in_namespace if obj.get("kind") == "ConfigMap")]
    for other in sorted(ns for ns in record_namespaces if ns):
        records += kubectl_items(
            kubectl, ["secrets,configmaps"], namespace=other, selector=HELM_RECORD_SELECTOR
        )
    releases = _helm_releases(records)
    record_refs = {ref for release in releases for ref in release.records}

    pools: list[FoundObject] = []
    advertisements: list[FoundObject] = []
    crds_present = {ref.name for ref in by_ref if ref.kind == "CustomResourceDefinition"}
    if namespace_present and {"ipaddresspools.metallb.io", "l2advertisements.metallb.io"} <= crds_present:
        types = ["ipaddresspools.metallb.io", "l2advertisements.metallb.io"]
        if "bgpadvertisements.metallb.io" in crds_present:
            types.append("bgpadvertisements.metallb.io")
        for obj in kubectl_items(kubectl, [",".join(types)], namespace=namespace):
            target = pools if obj.get("kind") == "IPAddressPool" else advertisements
            target.append(found_object(obj, _detail(obj)))

    shared = tuple(found_object(by_ref[k.ref]) for k in SHARED_OBJECTS if k.ref in by_ref)
    native = tuple(
        found_object(by_ref[k.ref])
        for k in NATIVE_OBJECTS
        if k.ref in by_ref and _is_native(k, by_ref[k.ref])
    )
    known_refs = {
        *(found.ref for found in (*shared, *native)),
        *(workload.found.ref for workload in workloads),
        *record_refs,
    }
    rest = [found for found in map(found_object, in_namespace) if found.ref not in known_refs]
    # What a MetalLB controller makes at run time (its memberlist Secret) is owned by its Deployment.
    native_workloads = {found.ref for found in native if found.ref.kind in ("Deployment", "DaemonSet")}
    native_dependents = tuple(found for found in rest if set(found.owners) & native_workloads)
    workload_refs = {workload.found.ref for workload in workloads}
    rest = [found for found in rest if not set(found.owners) & workload_refs]
    chart_objects = tuple(found for found in rest if found.labels.get(CHART_NAME_LABEL) == "metallb")
    others = tuple(
        sorted(
            found.ref for found in rest if found not in chart_objects and found.ref not in NAMESPACE_DEFAULTS
        )
    )
    entries = _mapping(by_ref.get(WEBHOOK_CONFIGURATION)).get("webhooks") or []
    native_entries = tuple(
        str(entry.get("name"))
        for entry in entries
        if isinstance(entry, Mapping)
        and entry.get("name") == NATIVE_WEBHOOK_ENTRY
        and _mapping(_mapping(entry.get("clientConfig")).get("service")).get("name") == "webhook-service"
    )
    return ClusterSurvey(
        context=kubectl.context,
        namespace=found_object(by_ref[ObjectRef("Namespace", None, namespace)])
        if namespace_present
        else None,
        shared=shared,
        workloads=tuple(workloads),
        native=native,
        native_webhook_entries=native_entries,
        native_dependents=native_dependents,
        helm_releases=tuple(releases),
        pools=tuple(pools),
        advertisements=tuple(advertisements),
        chart_objects=chart_objects,
        others=others,
    )
