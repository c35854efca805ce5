"""scripts/take-over-metallb.sh, the takeover's three steps, run as Pulumi runs them: the exact command
text under /bin/sh -c, with a real kubectl against a fake API server that holds the runbook's install
(and, for the handover, the chart's objects as the chart's install leaves them while the handover runs:
the chart's speakers cannot start while the runbook's hold the host ports), or a Helm release."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest

from components.metallb import MetalLBArgs, takeover_command
from metallb_survey import NATIVE_MEMBERLIST_SECRET, NATIVE_OBJECTS, SHARED_OBJECTS, ObjectRef
from resource_names import RELEASE_NAME
from stack_config import ChartConfig
from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster, run_local_command
from tests.upstream import requires_upstream

pytestmark = requires_upstream

NS = "metallb-system"
WEBHOOKS = "metallb-webhook-configuration"
WEBHOOK_API = "admissionregistration.k8s.io/v1"
PARK_LABEL = "lan.macula.io/parked-by-takeover"
STALE_WEBHOOK = "bgppeersvalidationwebhook.metallb.io"
KIND_TO_API = {
    "Deployment": "apps/v1",
    "DaemonSet": "apps/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "CustomResourceDefinition": "apiextensions.k8s.io/v1",
    "ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
    "IPAddressPool": "metallb.io/v1beta1",
    "L2Advertisement": "metallb.io/v1beta1",
}


def exists(api: FakeKubeApi, ref: ObjectRef) -> bool:
    return api.exists(KIND_TO_API.get(ref.kind, "v1"), ref.kind, ref.name, ref.namespace)


def chart_during_install() -> list[dict[str, Any]]:
    """The chart's objects as `up` has just applied them: the speakers pending, everything else running."""
    objects = []
    for obj in installs.chart_install(helm=False, stack="macula-lan/kind-dev"):
        name = obj["metadata"]["name"]
        if obj["kind"] in ("Namespace", "CustomResourceDefinition") or name in (
            "metallb-excludel2",
            "webhook-server-cert",
            "metallb-webhook-configuration",
        ):
            continue  # the runbook's objects of the same name are the ones in the cluster
        objects.append(installs.pending(obj) if obj["kind"] == "DaemonSet" else obj)
    return objects


def speaker_selector(api: FakeKubeApi, name: str) -> dict[str, str]:
    return dict(api.get("apps/v1", "DaemonSet", name, NS)["spec"]["template"]["spec"].get("nodeSelector", {}))


def play_the_daemonset_controller(api: FakeKubeApi, method: str, before: dict[str, Any]) -> None:
    """Parked runbook speakers free the host ports: the chart's speakers then become ready."""
    if before["kind"] != "DaemonSet" or method != "PATCH":
        return
    if PARK_LABEL in speaker_selector(api, "speaker") and PARK_LABEL not in speaker_selector(
        api, "metallb-speaker"
    ):
        api.update(
            "apps/v1",
            "DaemonSet",
            "metallb-speaker",
            NS,
            {"status": {"numberReady": 1, "numberAvailable": 1}},
        )


def webhook_entries(api: FakeKubeApi) -> list[dict[str, Any]]:
    return list(api.get(WEBHOOK_API, "ValidatingWebhookConfiguration", WEBHOOKS)["webhooks"])


def apply_the_charts_webhooks(api: FakeKubeApi) -> None:
    """What the webhook-entry step and then Pulumi's apply of the chart's configuration leave: the
    manifest's BGPPeer entry gone, the five entries of the same name pointing at the chart's Service, and
    the chart's BGPPeer entry added."""
    entries = [entry for entry in webhook_entries(api) if entry["name"] != STALE_WEBHOOK]
    for entry in entries:
        entry["clientConfig"]["service"]["name"] = "metallb-webhook-service"
    chart_entry = {**entries[0], "name": "bgppeervalidationwebhook.metallb.io"}
    api.update(
        WEBHOOK_API, "ValidatingWebhookConfiguration", WEBHOOKS, None, {"webhooks": [chart_entry, *entries]}
    )


def cluster(*, speakers_start: bool = True, chart_controller_ready: bool = True) -> FakeKubeApi:
    api = FakeKubeApi(
        [
            *installs.runbook_install(),
            *chart_during_install(),
            installs.foreign_configmap(),
            installs.node(),
            *installs.bootstrap_service(),
        ]
    )
    apply_the_charts_webhooks(api)
    if not chart_controller_ready:
        api.update("apps/v1", "Deployment", "metallb-controller", NS, {"status": {"availableReplicas": 0}})
    if speakers_start:
        api.on_change.append(play_the_daemonset_controller)
    return api


def command(stage: str, context: str = "kind-macula-dev") -> str:
    """The command text the program gives the stage's local.Command."""
    return takeover_command(
        MetalLBArgs(
            chart=ChartConfig(webhook_timeout_seconds=20),
            kube_context=context,
            kubeconfig=None,
            stack_mark="macula-lan/kind-dev",
            adopt_existing=True,
        ),
        stage,
        *(["--release", RELEASE_NAME] if stage == "forget-helm-release" else []),
    )


def run(stage: str, *extra: str, context: str = "kind-macula-dev") -> subprocess.CompletedProcess[str]:
    return run_local_command(command(stage, context), "--interval", "1", *extra)


def handover(*extra: str, context: str = "kind-macula-dev") -> subprocess.CompletedProcess[str]:
    return run("handover", *extra, context=context)


def deleted_paths(api: FakeKubeApi) -> list[str]:
    return [path for method, path in api.requests if method == "DELETE"]


def patched_speakers(api: FakeKubeApi) -> list[str]:
    return [path for method, path in api.requests if method == "PATCH" and "daemonsets" in path]


# --- webhook-entry, before the chart ---------------------------------------------------------------------


def test_the_runbooks_bgppeer_webhook_entry_goes_before_the_chart_and_nothing_else():
    api = FakeKubeApi(installs.runbook_install())
    with fake_cluster(api=api):
        result = run("webhook-entry")
        again = run("webhook-entry")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"removed webhook {STALE_WEBHOOK} from "
        "validatingwebhookconfiguration.admissionregistration.k8s.io/metallb-webhook-configuration\n"
    )
    assert sorted(entry["name"] for entry in webhook_entries(api)) == [
        "bfdprofilevalidationwebhook.metallb.io",
        "bgpadvertisementvalidationwebhook.metallb.io",
        "communityvalidationwebhook.metallb.io",
        "ipaddresspoolvalidationwebhook.metallb.io",
        "l2advertisementvalidationwebhook.metallb.io",
    ]
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("no runbook webhook entry in metallb-webhook-configuration")
    assert deleted_paths(api) == []


def test_a_bgppeer_entry_that_points_elsewhere_is_not_the_runbooks():
    api = FakeKubeApi(installs.runbook_install())
    entries = webhook_entries(api)
    for entry in entries:
        entry["clientConfig"]["service"]["name"] = "their-webhook"
    api.update(WEBHOOK_API, "ValidatingWebhookConfiguration", WEBHOOKS, None, {"webhooks": entries})
    with fake_cluster(api=api):
        result = run("webhook-entry")
    assert result.returncode == 0, result.stderr
    assert len(webhook_entries(api)) == 6


def test_without_a_webhook_configuration_there_is_nothing_to_remove():
    with fake_cluster([installs.node()]):
        result = run("webhook-entry")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no runbook webhook entry")


# --- handover, beside the chart --------------------------------------------------------------------------


def test_removes_exactly_the_runbooks_objects_and_keeps_everything_else():
    api = cluster()
    with fake_cluster(api=api):
        result = handover()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["removed daemonset.apps/speaker", "removed deployment.apps/controller"]
    assert lines[-2] == "removed service/webhook-service"
    assert len(lines) == len(NATIVE_OBJECTS) + 1
    assert lines[-1].startswith(
        f"handed over: removed {len(NATIVE_OBJECTS)} objects of the runbook's MetalLB"
    )
    assert "the chart's speakers were ready" in lines[-1]
    for known in NATIVE_OBJECTS:
        assert not exists(api, known.ref), known.ref
    for known in SHARED_OBJECTS:
        assert exists(api, known.ref), known.ref
    # Owned by the runbook's controller Deployment, its memberlist Secret went with it.
    assert not exists(api, NATIVE_MEMBERLIST_SECRET)
    kept = [
        ObjectRef("ConfigMap", NS, "team-notes"),
        ObjectRef("IPAddressPool", NS, "lan-pool"),
        ObjectRef("L2Advertisement", NS, "lan-advertisement"),
        ObjectRef("Deployment", NS, "metallb-controller"),
        ObjectRef("DaemonSet", NS, "metallb-speaker"),
        ObjectRef("Service", NS, "metallb-webhook-service"),
        ObjectRef("Service", "macula", "macula-bootstrap"),
    ]
    for ref in kept:
        assert exists(api, ref), ref
    assert len(deleted_paths(api)) == len(NATIVE_OBJECTS)
    assert len(webhook_entries(api)) == 6
    assert PARK_LABEL not in speaker_selector(api, "metallb-speaker")


def test_the_order_parks_the_controller_then_the_speakers_and_removes_only_then():
    api = cluster()
    with fake_cluster(api=api):
        assert handover().returncode == 0
    changes = [(m, p) for m, p in api.requests if m in ("DELETE", "PATCH")]
    assert changes[:4] == [
        ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/controller"),
        ("PATCH", f"/apis/apps/v1/namespaces/{NS}/daemonsets/speaker"),
        ("DELETE", f"/apis/apps/v1/namespaces/{NS}/daemonsets/speaker"),
        ("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/controller"),
    ]
    # The chart's controller was asked about before the runbook's speakers were touched.
    first_speaker_patch = api.requests.index(changes[1])
    assert ("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/metallb-controller") in api.requests[
        :first_speaker_patch
    ]


def test_a_second_run_removes_nothing():
    api = cluster()
    with fake_cluster(api=api):
        assert handover().returncode == 0
        before = len(deleted_paths(api))
        again = handover()
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        "no runbook MetalLB in metallb-system (context kind-macula-dev): nothing removed; "
        "the chart's MetalLB runs\n"
    )
    assert len(deleted_paths(api)) == before


def test_speakers_that_never_get_ready_give_the_ports_back_to_the_runbooks():
    api = cluster(speakers_start=False)
    with fake_cluster(api=api):
        result = handover("--speaker-timeout", "10")
    assert result.returncode == 1
    assert (
        "the chart's speakers did not take over (not ready within 10s); the runbook's are back and answer ARP"
        in result.stderr
    )
    # The chart's speakers hold the host ports once placed: they are parked in turn.
    assert speaker_selector(api, "speaker") == {"kubernetes.io/os": "linux"}
    assert PARK_LABEL in speaker_selector(api, "metallb-speaker")
    # The chart's controller serves by now, so the runbook's stays parked: the two would fight over the
    # webhook's certificate. The runbook's speakers need only its memberlist Secret, which is kept.
    assert api.get("apps/v1", "Deployment", "controller", NS)["spec"]["replicas"] == 0
    assert exists(api, NATIVE_MEMBERLIST_SECRET)
    assert deleted_paths(api) == []


def test_a_chart_speaker_that_cannot_start_stops_the_wait_at_once():
    api = cluster(speakers_start=False)
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "metallb-speaker-x7k2p",
                "namespace": NS,
                "labels": {"app.kubernetes.io/name": "metallb", "app.kubernetes.io/component": "speaker"},
            },
            "status": {
                "containerStatuses": [
                    {"name": "speaker", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                ]
            },
        }
    )
    started = time.monotonic()
    with fake_cluster(api=api):
        result = handover("--speaker-timeout", "60")
    assert result.returncode == 1
    assert "the chart's speakers did not take over (a chart speaker is in ImagePullBackOff)" in result.stderr
    assert time.monotonic() - started < 30
    assert PARK_LABEL not in speaker_selector(api, "speaker")


def test_a_run_after_a_failed_one_lets_the_chart_speakers_go_as_it_parks_the_runbooks():
    api = cluster()
    api.update(
        "apps/v1",
        "DaemonSet",
        "metallb-speaker",
        NS,
        {"spec": {"template": {"spec": {"nodeSelector": {PARK_LABEL: "true"}}}}},
    )
    with fake_cluster(api=api):
        result = handover()
    assert result.returncode == 0, result.stderr
    assert PARK_LABEL not in speaker_selector(api, "metallb-speaker")
    speaker_patches = patched_speakers(api)
    assert speaker_patches[:2] == [
        f"/apis/apps/v1/namespaces/{NS}/daemonsets/speaker",
        f"/apis/apps/v1/namespaces/{NS}/daemonsets/metallb-speaker",
    ]


def test_a_node_that_is_down_does_not_keep_the_handover_from_finishing():
    api = cluster()
    # Two nodes, one down: each DaemonSet wants two pods and has one ready.
    for name in ("speaker", "metallb-speaker"):
        api.update("apps/v1", "DaemonSet", name, NS, {"status": {"desiredNumberScheduled": 2}})
    with fake_cluster(api=api):
        result = handover()
    assert result.returncode == 0, result.stderr


def test_a_chart_controller_that_never_gets_available_brings_the_runbooks_back_and_fails():
    api = cluster(chart_controller_ready=False)
    with fake_cluster(api=api):
        result = handover("--timeout", "3")
    assert result.returncode == 1
    assert "gave up after 3s waiting for the chart's controller to be available" in result.stderr
    assert api.get("apps/v1", "Deployment", "controller", NS)["spec"]["replicas"] == 1
    assert patched_speakers(api) == []
    assert deleted_paths(api) == []


def test_a_webhook_configuration_the_chart_never_takes_over_undoes_the_handover():
    api = cluster()
    entries = webhook_entries(api)
    entries[1]["clientConfig"]["service"]["name"] = "webhook-service"  # the chart's apply has not happened
    api.update(WEBHOOK_API, "ValidatingWebhookConfiguration", WEBHOOKS, None, {"webhooks": entries})
    with fake_cluster(api=api):
        result = handover("--timeout", "3")
    assert result.returncode == 1
    assert (
        "gave up after 3s waiting for the webhook configuration to point at the chart's Service"
        in result.stderr
    )
    assert api.get("apps/v1", "Deployment", "controller", NS)["spec"]["replicas"] == 1
    assert patched_speakers(api) == []
    assert deleted_paths(api) == []


def test_a_run_stopped_after_parking_the_controller_brings_back_one_replica_on_failure():
    api = cluster(chart_controller_ready=False)
    api.update("apps/v1", "Deployment", "controller", NS, {"spec": {"replicas": 0}})
    with fake_cluster(api=api):
        assert handover("--timeout", "2").returncode == 1
    assert api.get("apps/v1", "Deployment", "controller", NS)["spec"]["replicas"] == 1


def test_an_interrupted_handover_undoes_its_parking():
    api = cluster(speakers_start=False)
    with fake_cluster(api=api):
        process = subprocess.Popen(
            ["/bin/sh", "-c", f"{command('handover')} --interval 1 --speaker-timeout 60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not patched_speakers(api) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "interrupted; the parking was undone" in stderr
    assert PARK_LABEL not in speaker_selector(api, "speaker")
    assert deleted_paths(api) == []


def test_a_denied_removal_stops_the_run_before_anything_after_it():
    api = cluster()
    api.forbid("DELETE", "serviceaccounts", NS)
    with fake_cluster(api=api):
        result = handover()
    assert result.returncode == 1
    assert "could not remove serviceaccount/controller; nothing after it was touched" in result.stderr
    assert exists(api, ObjectRef("ClusterRole", None, "metallb-system:controller"))
    assert result.stdout.splitlines() == [
        "removed daemonset.apps/speaker",
        "removed deployment.apps/controller",
    ]


def test_kubectl_warnings_on_stderr_change_nothing():
    api = cluster()
    api.broken_discovery = True
    with fake_cluster(api=api):
        result = handover()
    assert result.returncode == 0, result.stderr
    # kubectl asked the broken API (recent ones then warn on stderr on every call) and carried on.
    assert ("GET", "/apis/metrics.k8s.io/v1beta1") in api.requests
    assert len(result.stdout.splitlines()) == len(NATIVE_OBJECTS) + 1


def test_an_unreachable_cluster_fails_at_the_deadline_having_removed_nothing():
    with fake_cluster():
        result = handover("--timeout", "2", context=UNREACHABLE_CONTEXT)
    assert result.returncode == 1
    assert (
        "gave up after 2s waiting for the chart's Deployment metallb-controller to be created"
        in result.stderr
    )
    assert result.stdout == ""


@pytest.mark.parametrize("stage", ["handover", "webhook-entry", "forget-helm-release"])
def test_help_works_as_pulumi_runs_the_script(stage):
    result = run(stage, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(
        "Usage: take-over-metallb.sh webhook-entry|handover|forget-helm-release --context CONTEXT"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--interval", "0"), "--interval must be from 1 to 60, got '0'"),
        (("--timeout", "1e3"), "--timeout must be a whole number of seconds, got '1e3'"),
        (("--timeout", "7200"), "--timeout must be from 1 to 3600, got '7200'"),
        (("--speaker-timeout", "5"), "--speaker-timeout must be from 10 to 3600, got '5'"),
        (("--request-timeout", "-1"), "--request-timeout must be a whole number of seconds, got '-1'"),
        (("--context", "--namespace"), "--context needs a context name"),
        (("webhook-entry",), "one stage only, got 'handover' and 'webhook-entry'"),
        (("--bogus",), "unknown argument: --bogus"),
        (("--release", "Bad_Name"), "--release must be a Helm release name, got 'Bad_Name'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    result = handover(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_leading_zero_is_decimal_not_octal():
    api = cluster()
    with fake_cluster(api=api):
        result = handover("--timeout", "010", "--interval", "01")
    assert result.returncode == 0, result.stderr


# --- forget-helm-release, after the chart ----------------------------------------------------------------


def helm_cluster() -> FakeKubeApi:
    other = installs.helm_record("ingress", 4)
    return FakeKubeApi([*installs.chart_install(), other])


def test_removes_the_release_records_and_nothing_else():
    api = helm_cluster()
    objects_before = {key for key in api.objects if "sh.helm.release" not in key[2]}
    with fake_cluster(api=api):
        result = run("forget-helm-release", context="beam00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "forgot secret/sh.helm.release.v1.metallb.v1",
        "forgot secret/sh.helm.release.v1.metallb.v2",
        "forgot Helm release metallb in metallb-system: 2 records removed; its objects stay, now the stack's",
    ]
    assert api.names("Secret", NS) >= {"sh.helm.release.v1.ingress.v4", "webhook-server-cert"}
    assert not {name for name in api.names("Secret", NS) if name.startswith("sh.helm.release.v1.metallb")}
    assert {key for key in api.objects if "sh.helm.release" not in key[2]} == objects_before


def test_records_in_configmaps_go_too():
    record = installs.helm_record("metallb", 1)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**record["metadata"]},
        "data": {"release": "eA=="},
    }
    api = FakeKubeApi([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, configmap])
    with fake_cluster(api=api):
        result = run("forget-helm-release", context="beam00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "forgot configmap/sh.helm.release.v1.metallb.v1"
    assert api.names("ConfigMap", NS) == set()


def test_without_a_release_there_is_nothing_to_forget():
    with fake_cluster(installs.runbook_install()):
        result = run("forget-helm-release", context="beam00")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no Helm release metallb in metallb-system (context beam00): nothing to forget\n"


def test_records_that_cannot_be_listed_fail_the_step():
    api = helm_cluster()
    api.forbid("LIST", "secrets", NS)
    with fake_cluster(api=api):
        result = run("forget-helm-release", context="beam00")
    assert result.returncode == 1
    assert "could not look for the secrets holding Helm's records of release metallb" in result.stderr
    assert result.stdout == ""
