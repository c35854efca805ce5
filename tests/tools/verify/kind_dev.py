"""kind-dev's configuration and what its cluster answered (recorded API responses), as verify's tests use
them."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from stack_config import load_stack_file_config
from tests.fake_kube_api import custom_resource_definition
from tests.program import PROJECT_DIR

RECORDED = Path(__file__).resolve().parent.parent / "recorded_api"
KIND_DEV = load_stack_file_config(PROJECT_DIR, "kind-dev")
BEAM00 = load_stack_file_config(PROJECT_DIR, "beam00")
assert KIND_DEV.bootstrap is not None
BOOTSTRAP = KIND_DEV.bootstrap
PINNED = ipaddress.ip_address("192.168.129.51")


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def kube_proxy(strict: str) -> dict[str, Any]:
    """kube-system/kube-proxy as kubeadm writes it (recorded, config.conf in IPVS mode), with strictARP
    set to `strict`."""
    configmap: dict[str, Any] = recorded("configmap-kube-proxy.json")
    text = configmap["data"]["config.conf"]
    assert "  strictARP: true\n" in text
    configmap["data"]["config.conf"] = text.replace("  strictARP: true\n", f"  strictARP: {strict}\n")
    return configmap


def cluster_objects(nodes: str = "nodes.json", strict_arp: str = "true") -> list[dict[str, Any]]:
    """kind-dev's cluster as the recorded responses show it healthy, for the fake API server to serve:
    MetalLB's CRDs, workloads, pool and advertisement, the speaker pod, the node (`nodes`), the bootstrap
    Service, and kube-proxy's configuration with strictARP `strict_arp`."""
    return [
        custom_resource_definition("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool"),
        custom_resource_definition("metallb.io", "v1beta1", "l2advertisements", "L2Advertisement"),
        recorded("deployment-metallb-controller.ready.json"),
        recorded("daemonset-metallb-speaker.ready.json"),
        *recorded("ipaddresspools.json")["items"],
        *recorded("l2advertisements.json")["items"],
        *recorded("pods-metallb-speaker.json")["items"],
        *recorded(nodes)["items"],
        recorded("service-macula-bootstrap.loadbalancer.json"),
        *recorded("endpointslices-macula-bootstrap.json")["items"],
        kube_proxy(strict_arp),
    ]
