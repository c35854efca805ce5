"""scripts/wait-for-service-ip.sh, the bounded wait for the bootstrap Service's address, run from the exact
command text the program declares, with a real kubectl against a fake API server (with an aggregated API
whose discovery fails, so kubectl prints warnings on stderr)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from components.bootstrap_service import BootstrapServiceArgs, address_command
from stack_config import BootstrapConfig
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster, run_local_command

PINNED = "192.168.129.51"


def service(ingress: list[str] | None = None) -> dict[str, Any]:
    status = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}} if ingress else {}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "macula-bootstrap", "namespace": "macula"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "quic", "port": 4433, "protocol": "UDP"}]},
        "status": status,
    }


def allocation_failed(message: str) -> dict[str, Any]:
    """The event MetalLB 0.14.3's controller records (controller/service.go: Errorf(svc, "AllocationFailed",
    "Failed to allocate IP for %q: %s", key, err))."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "macula-bootstrap.17a0c1", "namespace": "macula"},
        "involvedObject": {"kind": "Service", "name": "macula-bootstrap", "namespace": "macula"},
        "reason": "AllocationFailed",
        "type": "Warning",
        "source": {"component": "metallb-controller"},
        "message": f'Failed to allocate IP for "macula/macula-bootstrap": {message}',
    }


def wait(*extra: str, ip: str | None = PINNED, context: str = "kind-macula-dev", timeout: int = 10):
    pinned = ipaddress.ip_address(ip) if ip is not None else None
    bootstrap = BootstrapConfig(ip=pinned, assign_timeout_seconds=timeout)
    args = BootstrapServiceArgs(
        bootstrap=bootstrap, wait_for=[], kube_context=context, kubeconfig=None, cluster_identity="uid"
    )
    return run_local_command(address_command(args), "--interval", "1", *extra)


@pytest.fixture
def api() -> FakeKubeApi:
    fake = FakeKubeApi()
    fake.broken_discovery = True
    return fake


def test_prints_the_address_once_metallb_has_given_it(api: FakeKubeApi):
    api.add(service([PINNED]))
    with fake_cluster(api=api):
        result = wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{PINNED}\n"


def test_an_unpinned_service_prints_whatever_metallb_chose(api: FakeKubeApi):
    api.add(service(["192.168.129.57"]))
    with fake_cluster(api=api):
        result = wait(ip=None)
    assert result.stdout == "192.168.129.57\n"


def test_metallbs_own_reason_and_the_fix_when_no_address_comes(api: FakeKubeApi):
    api.add(service())
    api.add(allocation_failed(f'["{PINNED}"] is not allowed in config'))
    with fake_cluster(api=api):
        result = wait(timeout=10)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.rstrip().endswith(
        f"MetalLB gave Service macula/macula-bootstrap no address {PINNED} within 10s: Failed to allocate IP "
        f'for "macula/macula-bootstrap": ["{PINNED}"] is not allowed in config; the address is in no pool of '
        "the stack: pin an address of its pools (make plan lists them)"
    )


def test_an_address_another_service_holds_is_named_as_such(api: FakeKubeApi):
    api.add(service())
    api.add(
        allocation_failed(
            'can\'t change sharing key for "macula/macula-bootstrap", address also in use by other/web'
        )
    )
    with fake_cluster(api=api):
        result = wait(timeout=10)
    assert result.returncode == 1
    assert "another Service holds the address: free it there, or pin another one" in result.stderr


def test_silence_from_metallb_says_where_to_look(api: FakeKubeApi):
    api.add(service())
    with fake_cluster(api=api):
        result = wait(timeout=10)
    assert result.returncode == 1
    assert (
        "said nothing about it (no AllocationFailed event): check that its controller runs" in result.stderr
    )


def test_a_missing_service_and_an_unreachable_cluster_are_different_answers(api: FakeKubeApi):
    with fake_cluster(api=api):
        missing = wait()
        unreachable = wait(context=UNREACHABLE_CONTEXT, timeout=10)
    assert missing.returncode == 1
    assert "Service macula/macula-bootstrap does not exist (context kind-macula-dev)" in missing.stderr
    assert unreachable.returncode == 1
    assert f"could not read Service macula/macula-bootstrap in 10s (context {UNREACHABLE_CONTEXT})" in (
        unreachable.stderr
    )


def test_a_denied_read_is_not_a_missing_service(api: FakeKubeApi):
    api.add(service([PINNED]))
    api.forbid("GET", "services", "macula")
    with fake_cluster(api=api):
        result = wait(timeout=10)
    assert result.returncode == 1
    assert "could not read Service macula/macula-bootstrap" in result.stderr
    assert "does not exist" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--timeout", "5"), "--timeout must be from 10 to 3600, got '5'"),
        (("--timeout", "1e3"), "--timeout must be a whole number of seconds, got '1e3'"),
        (("--interval", "0"), "--interval must be from 1 to 60, got '0'"),
        (("--service", "-x"), "--service needs a Service name, got '-x'"),
        (("--ip", "192.168.129.x"), "--ip must be an IP address, got '192.168.129.x'"),
        (("--bogus", "1"), "unknown argument: --bogus"),
    ],
    ids=["timeout-low", "timeout-not-decimal", "interval-zero", "option-like-service", "bad-ip", "unknown"],
)
def test_bad_arguments_get_exit_2(extra: tuple[str, ...], message: str):
    result = wait(*extra)
    assert result.returncode == 2
    assert message in result.stderr


def test_help_works_as_the_program_runs_it():
    result = wait("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: wait-for-service-ip.sh --context CONTEXT")
