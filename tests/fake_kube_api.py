"""A kube-apiserver on loopback with just enough of the API for a real kubectl, and the faults real ones have.

The tests point a real `kubectl` at it through a kubeconfig they write. It serves discovery, GET, LIST
(label and field selectors, one namespace or all), DELETE and merge PATCH of the objects it is seeded
with (merge patches; strategic ones merge lists of named objects by name). Custom resource types are
served only while their CustomResourceDefinition exists, as on a real
cluster. Faults:

- `broken_discovery`: an aggregated API (metrics.k8s.io) whose discovery answers 503. kubectl then
  writes "couldn't get resource list" warnings to stderr on every call and carries on.
- `forbid(method, plural, namespace)`: 403 Forbidden with the API server's own message.
- an unreachable cluster: `unreachable_url` names a loopback port nobody listens on.
- a hung one: `silent_url` names a loopback port that takes connections and never answers.
- not found: anything not seeded.

Deleting an object also deletes its dependents (ownerReferences), as the garbage collector would.

A write (PUT, PATCH) dates its writer's managedFields entry, and a PUT must carry the current
resourceVersion, as on a real server.
`requests` records every (method, path) for the tests to assert on; `on_change` lets a test play a
controller (say, make the chart's speakers ready once the runbook's are gone): each hook gets the API,
the method (DELETE or PATCH) and the object as it was before.
"""

from __future__ import annotations

import copy
import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


BUILT_IN_TYPES = (
    ResourceType("", "v1", "namespaces", "Namespace", False),
    ResourceType("", "v1", "nodes", "Node", False),
    ResourceType("", "v1", "pods", "Pod", True),
    ResourceType("", "v1", "services", "Service", True),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceType("apps", "v1", "deployments", "Deployment", True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ResourceType(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
    ),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
)
AGGREGATED_GROUP = "metrics.k8s.io"


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }


def _matches_labels(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (part.strip() for part in selector.split(","))):
        negate = "!=" in term
        path, value = term.split("!=" if negate else "=", 1)
        actual = _field(obj, path.lstrip("="))
        actual_text = "" if actual is None else str(actual)
        if (actual_text == value.lstrip("=")) == negate:
            return False
    return True


def _merge_list(target: Any, patch: list[Any]) -> list[Any]:
    """A strategic merge of a list of named objects: by `name`, `$patch: delete` removing one."""
    result = [copy.deepcopy(item) for item in target] if isinstance(target, list) else []
    for item in patch:
        index = next((i for i, old in enumerate(result) if old.get("name") == item.get("name")), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is not None:
            result[index] = _merge_patch(result[index], item, strategic=True)
        else:
            result.append(copy.deepcopy(item))
    return result


def _merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    """RFC 7386; with `strategic`, lists of named objects merge by name, as the webhooks list does."""
    if (
        isinstance(patch, list)
        and strategic
        and all(isinstance(item, dict) and "name" in item for item in patch)
    ):
        return _merge_list(target, patch)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value, strategic=strategic)
    return result


class FakeKubeApi:
    """The cluster's state and faults; `serve()` puts it on a loopback port."""

    def __init__(self, objects: Iterable[dict[str, Any]] = ()) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.broken_discovery = False
        self.forbidden: set[tuple[str, str, str | None]] = set()
        self.on_change: list[Callable[[FakeKubeApi, str, dict[str, Any]], None]] = []
        # How many more times MetalLB's webhook fails (connection refused) before it serves.
        self.webhook_failures = 0
        # The API server's clock, which tests may move.
        self.clock: Callable[[], float] = time.time
        self._resource_version = 1000
        self.add(*objects)

    # --- state --------------------------------------------------------------------------------------

    def types(self) -> list[ResourceType]:
        """Built-in types, plus one per served version of every CustomResourceDefinition present."""
        custom = []
        for (type_key, _, _), crd in list(self.objects.items()):
            if type_key != "apiextensions.k8s.io/customresourcedefinitions":
                continue
            spec = crd.get("spec", {})
            for version in spec.get("versions", []):
                if version.get("served", True):
                    custom.append(
                        ResourceType(
                            spec["group"],
                            version["name"],
                            spec["names"]["plural"],
                            spec["names"]["kind"],
                            spec.get("scope", "Namespaced") == "Namespaced",
                        )
                    )
        return [*BUILT_IN_TYPES, *custom]

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        for resource_type in self.types():
            if (resource_type.group, resource_type.version, resource_type.kind) == (group, version, kind):
                return resource_type
        if kind == "CustomResourceDefinition":
            return BUILT_IN_TYPES[-2]
        raise KeyError(f"the fake API serves no {api_version} {kind}")

    @staticmethod
    def _type_key(resource_type: ResourceType) -> str:
        return f"{resource_type.group}/{resource_type.plural}"

    def add(self, *objects: dict[str, Any]) -> None:
        """Seed objects as the API server would store them: uid, resourceVersion, namespace filled in."""
        with self.lock:
            for original in objects:
                obj = copy.deepcopy(original)
                resource_type = self.type_of(obj["apiVersion"], obj["kind"])
                metadata = obj.setdefault("metadata", {})
                if resource_type.namespaced:
                    metadata.setdefault("namespace", "default")
                else:
                    metadata.pop("namespace", None)
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", "2026-12-01T10:00:00Z")
                metadata["resourceVersion"] = self._next_version()
                if metadata.get("generation") is None and obj["kind"] not in ("Secret", "ConfigMap"):
                    metadata["generation"] = 1
                key = (self._type_key(resource_type), metadata.get("namespace"), metadata["name"])
                self.objects[key] = obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        with self.lock:
            resource_type = self.type_of(api_version, kind)
            found = self.objects.get((self._type_key(resource_type), namespace, name))
            return copy.deepcopy(found) if found is not None else {}

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        return bool(self.get(api_version, kind, name, namespace))

    def names(self, kind: str, namespace: str | None = None) -> set[str]:
        with self.lock:
            return {
                obj["metadata"]["name"]
                for obj in self.objects.values()
                if obj["kind"] == kind and obj["metadata"].get("namespace") == namespace
            }

    def update(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Any) -> None:
        with self.lock:
            resource_type = self.type_of(api_version, kind)
            key = (self._type_key(resource_type), namespace, name)
            self.objects[key] = _merge_patch(self.objects[key], patch)
            self.objects[key]["metadata"]["resourceVersion"] = self._next_version()

    def forbid(self, method: str, plural: str, namespace: str | None = None) -> None:
        """Deny `method` (GET, LIST, DELETE, PATCH) on `plural`, in `namespace` or everywhere."""
        self.forbidden.add((method, plural, namespace))

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    # --- HTTP ---------------------------------------------------------------------------------------

    def discovery(self, path: str) -> tuple[int, Any] | None:
        types = self.types()
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for resource_type in types:
                if resource_type.group:
                    versions = groups.setdefault(resource_type.group, [])
                    if resource_type.version not in versions:
                        versions.append(resource_type.version)
            if self.broken_discovery:
                groups[AGGREGATED_GROUP] = ["v1beta1"]
            return 200, {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                        "preferredVersion": {
                            "groupVersion": f"{group}/{versions[0]}",
                            "version": versions[0],
                        },
                    }
                    for group, versions in groups.items()
                ],
            }
        if self.broken_discovery and path == f"/apis/{AGGREGATED_GROUP}/v1beta1":
            return 503, status(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        listed = [t for t in types if t.prefix == path]
        if not listed:
            return None
        return 200, {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": listed[0].group_version,
            "resources": [
                {
                    "name": t.plural,
                    "singularName": t.kind.lower(),
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                }
                for t in listed
            ],
        }

    def route(self, path: str) -> tuple[ResourceType, str | None, str | None] | None:
        """(type, namespace, name) of an object or collection path; None if no type matches."""
        for resource_type in self.types():
            if not path.startswith(resource_type.prefix + "/"):
                continue
            rest = path[len(resource_type.prefix) + 1 :].split("/")
            namespace = None
            if resource_type.namespaced and len(rest) >= 3 and rest[0] == "namespaces":
                namespace, rest = rest[1], rest[2:]
            if rest[0] != resource_type.plural or len(rest) > 2:
                continue
            return resource_type, namespace, rest[1] if len(rest) == 2 else None
        return None

    def handle(self, method: str, raw_path: str, body: bytes, content_type: str = "") -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path.rstrip("/"), parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, path))
            if method == "GET":
                found = self.discovery(path)
                if found is not None:
                    return found
            routed = self.route(path)
            if routed is None:
                return 404, status(404, "NotFound", "the server could not find the requested resource")
            resource_type, namespace, name = routed
            verb = "LIST" if method == "GET" and name is None else method
            if (verb, resource_type.plural, namespace) in self.forbidden or (
                verb,
                resource_type.plural,
                None,
            ) in self.forbidden:
                where = f' in the namespace "{namespace}"' if namespace else ""
                group = resource_type.group
                return 403, status(
                    403,
                    "Forbidden",
                    f'{resource_type.plural} is forbidden: User "developer" cannot {verb.lower()} resource '
                    f'"{resource_type.plural}" in API group "{group}"{where}',
                    kind=resource_type.plural,
                )
            key_type = self._type_key(resource_type)
            if name is None:
                if method == "POST" and resource_type.plural == "selfsubjectaccessreviews":
                    return self._review_access(body)
                if method == "POST":
                    return self._create(resource_type, namespace, json.loads(body or b"{}"), query)
                if method != "GET":
                    return 405, status(405, "MethodNotAllowed", f"{method} on a collection is not served")
                return 200, self._list(resource_type, key_type, namespace, query)
            key = (key_type, namespace, name)
            obj = self.objects.get(key)
            if obj is None:
                return 404, status(
                    404,
                    "NotFound",
                    f"{resource_type.plural}{'.' + resource_type.group if resource_type.group else ''} "
                    f'"{name}" not found',
                    name=name,
                    kind=resource_type.plural,
                )
            if method == "GET":
                return 200, obj
            if method == "DELETE":
                del self.objects[key]
                self._collect_garbage(obj["metadata"]["uid"], body)
                for hook in self.on_change:
                    hook(self, method, obj)
                return 200, obj
            if method == "PUT":
                replacement = json.loads(body or b"{}")
                sent = replacement.get("metadata", {}).get("resourceVersion")
                if sent and sent != obj["metadata"]["resourceVersion"]:
                    return 409, status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {resource_type.plural} "{name}": the object has '
                        "been modified; please apply your changes to the latest version and try again",
                    )
                replacement["metadata"] = {
                    **replacement.get("metadata", {}),
                    "uid": obj["metadata"]["uid"],
                    "creationTimestamp": obj["metadata"].get("creationTimestamp"),
                }
                self.objects[key] = replacement
                self._touch(replacement, query.get("fieldManager", ["kubectl-replace"])[0])
                for hook in self.on_change:
                    hook(self, method, obj)
                return 200, replacement
            if method == "PATCH":
                patch = json.loads(body or b"{}")
                if not isinstance(patch, dict):
                    return 415, status(415, "UnsupportedMediaType", "the fake API applies merge patches only")
                strategic = content_type.startswith("application/strategic-merge-patch")
                self.objects[key] = _merge_patch(obj, patch, strategic=strategic)
                self._touch(self.objects[key], query.get("fieldManager", ["kubectl-patch"])[0])
                for hook in self.on_change:
                    hook(self, method, obj)
                return 200, self.objects[key]
            return 405, status(405, "MethodNotAllowed", f"{method} is not served by the fake API")

    def _review_access(self, body: bytes) -> tuple[int, Any]:
        """`kubectl auth can-i`: kubectl sends the review as protobuf, so the verb and resource are found
        as the strings in it; the answer is JSON, which kubectl reads too."""
        verbs = {"POST": b"create", "DELETE": b"delete", "PATCH": b"patch", "GET": b"get", "LIST": b"list"}
        allowed = not any(
            verbs.get(verb, b"?") in body and plural.encode() in body for verb, plural, _ in self.forbidden
        )
        return 201, {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {},
            "status": {"allowed": allowed},
        }

    def _create(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        query: dict[str, list[str]],
    ) -> tuple[int, Any]:
        """POST: MetalLB objects go through its webhook, which fails `webhook_failures` more times before
        it serves; a dry run stores nothing."""
        if resource_type.group == "metallb.io" and self.webhook_failures > 0:
            self.webhook_failures -= 1
            return 500, status(
                500,
                "InternalError",
                "Internal error occurred: failed calling webhook "
                f'"{resource_type.kind.lower()}validationwebhook.metallb.io": failed to call webhook: Post '
                '"https://metallb-webhook-service.metallb-system.svc:443/validate": dial tcp 10.96.12.3:443: '
                "connect: connection refused",
            )
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
        if query.get("dryRun") != ["All"]:
            self.add(obj)
        return 201, obj

    def _touch(self, obj: dict[str, Any], manager: str) -> None:
        """A write: a new resourceVersion, and the writer's entry in managedFields dated now."""
        metadata = obj["metadata"]
        metadata["resourceVersion"] = self._next_version()
        entries = [entry for entry in metadata.get("managedFields") or [] if entry.get("manager") != manager]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        metadata["managedFields"] = [*entries, {"manager": manager, "operation": "Update", "time": now}]

    def _collect_garbage(self, owner_uid: str, delete_options: bytes) -> None:
        """What the garbage collector does after a delete: dependents go too, unless orphaned."""
        options = json.loads(delete_options or b"{}")
        if options.get("propagationPolicy") == "Orphan":
            return
        for key, obj in list(self.objects.items()):
            owners = obj["metadata"].get("ownerReferences") or []
            if any(owner.get("uid") == owner_uid for owner in owners):
                del self.objects[key]
                self._collect_garbage(obj["metadata"]["uid"], b"")

    def _list(
        self, resource_type: ResourceType, key_type: str, namespace: str | None, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        labels = query.get("labelSelector", [""])[0]
        fields = query.get("fieldSelector", [""])[0]
        items = [
            obj
            for (type_key, obj_namespace, _), obj in sorted(self.objects.items(), key=lambda kv: kv[0])
            if type_key == key_type
            and (namespace is None or obj_namespace == namespace)
            and _matches_labels(obj["metadata"].get("labels") or {}, labels)
            and _matches_fields(obj, fields)
        ]
        return {
            "kind": f"{resource_type.kind}List",
            "apiVersion": resource_type.group_version,
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1; yields the server URL."""
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length) if length else b""
                code, body = api.handle(method, self.path, body_in, self.headers.get("Content-Type", ""))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_DELETE(self) -> None:
                self._answer("DELETE")

            def do_PATCH(self) -> None:
                self._answer("PATCH")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            # kubectl discovers every API group at once; the default backlog of 5 drops the rest of its
            # connections, which then wait a second for TCP to try again.
            request_queue_size = 128
            daemon_threads = True

        server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def custom_resource_definition(group: str, version: str, plural: str, kind: str) -> dict[str, Any]:
    """A CustomResourceDefinition with what the fake API needs to serve its type: one namespaced version."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": plural, "kind": kind},
            "scope": "Namespaced",
            "versions": [{"name": version, "served": True}],
        },
    }


def write_kubeconfig(path: Path, contexts: dict[str, str]) -> Path:
    """A kubeconfig with one context per name, each on the server URL given for it."""
    clusters = sorted(set(contexts.values()))
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "",
                "clusters": [
                    {"name": f"cluster-{i}", "cluster": {"server": url}} for i, url in enumerate(clusters)
                ],
                "contexts": [
                    {
                        "name": name,
                        "context": {"cluster": f"cluster-{clusters.index(url)}", "user": "developer"},
                    }
                    for name, url in contexts.items()
                ],
                "users": [{"name": "developer", "user": {}}],
            }
        )
    )
    return path


def unreachable_url() -> str:
    """A loopback URL on a port nobody listens on: kubectl gets "connection refused"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_url(port: int = 0) -> Iterator[str]:
    """A loopback URL whose server takes connections (the kernel's backlog does) and never answers, as a
    hung API server or a half-dead node does: kubectl waits until its timeout. On `port` when given, such
    as the port of a fake API server that has just stopped."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
