"""metallb_survey against a real kubectl and a fake API server seeded with our users' clusters."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kube_client import KubectlError
from metallb_survey import (
    CHART_CONTROLLER,
    CHART_SPEAKER,
    NATIVE_MEMBERLIST_SECRET,
    NATIVE_OBJECTS,
    SHARED_OBJECTS,
    ClusterSurvey,
    ObjectRef,
    decode_helm_record,
    image_version,
    survey_cluster,
)
from tests import metallb_installs as installs
from tests.fake_kube_api import FakeKubeApi
from tests.kube_cluster import UNREACHABLE_CONTEXT, fake_cluster
from tests.upstream import requires_upstream

pytestmark = requires_upstream

FOREIGN = ObjectRef("ConfigMap", "metallb-system", "team-notes")


def survey(objects: list[dict[str, Any]], api: FakeKubeApi | None = None) -> ClusterSurvey:
    with fake_cluster(objects, api=api) as cluster:
        return survey_cluster(cluster.kubectl())


def test_an_empty_cluster_has_no_metallb():
    found = survey([installs.node()])
    assert found.empty
    assert found.namespace is None
    assert (found.workloads, found.native, found.helm_releases, found.pools) == ((), (), (), ())


def test_the_runbook_install_is_recognised_object_by_object():
    found = survey([*installs.runbook_install(), installs.foreign_configmap(), installs.node()])
    assert {known.ref for known in NATIVE_OBJECTS} == {obj.ref for obj in found.native}
    assert {known.ref for known in SHARED_OBJECTS} == {obj.ref for obj in found.shared}
    assert {(w.found.ref.name, w.role, w.version) for w in found.workloads} == {
        ("controller", "controller", "0.14.3"),
        ("speaker", "speaker", "0.14.3"),
    }
    assert found.helm_releases == ()
    assert found.native_webhook_entries == ("bgppeersvalidationwebhook.metallb.io",)
    assert [(p.ref.name, p.detail) for p in found.pools] == [("lan-pool", installs.RUNBOOK_POOL_RANGE)]
    assert [(a.ref.name, a.detail) for a in found.advertisements] == [
        ("lan-advertisement", "pools: lan-pool")
    ]
    # Not the manifest's: the foreign ConfigMap, despite its app=metallb label.
    assert found.others == (FOREIGN,)
    # The controller's memberlist Secret is its Deployment's: it goes with it.
    assert [found.ref for found in found.native_dependents] == [NATIVE_MEMBERLIST_SECRET]


def test_the_native_manifest_objects_are_exactly_those_of_the_upstream_manifest():
    manifest = {
        ObjectRef(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        for obj in installs.runbook_install()[:-3]
    }
    ours = {known.ref for known in (*NATIVE_OBJECTS, *SHARED_OBJECTS)}
    assert manifest == ours
    assert not {known.ref for known in NATIVE_OBJECTS} & {known.ref for known in SHARED_OBJECTS}


def test_an_object_with_a_native_name_but_other_labels_is_not_the_runbooks():
    objects = installs.runbook_install()
    for obj in objects:
        if obj["kind"] == "ServiceAccount" and obj["metadata"]["name"] == "speaker":
            obj["metadata"]["labels"] = {"app": "someone-else"}
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "webhook-service":
            obj["spec"]["selector"] = {"app": "their-webhook"}
    found = survey(objects)
    refs = {obj.ref for obj in found.native}
    assert ObjectRef("ServiceAccount", "metallb-system", "speaker") not in refs
    assert ObjectRef("Service", "metallb-system", "webhook-service") not in refs
    assert ObjectRef("ServiceAccount", "metallb-system", "controller") in refs


def test_a_helm_release_is_recognised_with_its_decoded_record():
    found = survey([*installs.chart_install(), installs.pool("lan-pool", "192.168.129.70-192.168.129.80")])
    assert found.native == ()
    [release] = found.helm_releases
    assert (release.name, release.namespace, release.revision, release.status) == (
        "metallb",
        "metallb-system",
        2,
        "deployed",
    )
    assert (release.chart, release.chart_version, release.name_overrides) == ("metallb", "0.14.3", {})
    assert release.records == (
        ObjectRef("Secret", "metallb-system", "sh.helm.release.v1.metallb.v1"),
        ObjectRef("Secret", "metallb-system", "sh.helm.release.v1.metallb.v2"),
    )
    assert {w.found.ref for w in found.workloads} == {CHART_CONTROLLER, CHART_SPEAKER}
    assert all(w.found.annotations["meta.helm.sh/release-name"] == "metallb" for w in found.workloads)
    # The chart's other objects are recognised as the chart's, not left as somebody else's.
    assert ObjectRef("Service", "metallb-system", "metallb-webhook-service") in {
        o.ref for o in found.chart_objects
    }
    assert found.others == ()


def test_a_helm_release_that_renames_its_objects_says_so():
    objects = [
        o for o in installs.chart_install() if o["kind"] != "Secret" or "sh.helm" not in o["metadata"]["name"]
    ]
    objects.append(installs.helm_record("metallb", 3, values={"fullnameOverride": "lb"}))
    [release] = survey(objects).helm_releases
    assert release.revision == 3
    assert release.name_overrides == {"fullnameOverride": "lb"}


def test_an_unreadable_helm_record_is_reported_not_guessed():
    record = installs.helm_record("metallb", 1)
    record["data"]["release"] = "bm90IGEgcmVsZWFzZQ=="
    [release] = survey(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metallb-system"}}, record]
    ).helm_releases
    assert release.unreadable is not None
    assert "sh.helm.release.v1.metallb.v1 cannot be decoded" in release.unreadable


def test_this_stacks_install_is_recognised_by_its_marks():
    found = survey(installs.chart_install(helm=False, stack="macula-lan/beam00"))
    assert found.helm_releases == ()
    assert found.namespace is not None and found.namespace.stack == "macula-lan/beam00"
    assert {w.found.stack for w in found.workloads} == {"macula-lan/beam00"}


def test_the_survey_only_reads():
    api = FakeKubeApi([*installs.runbook_install(), *installs.chart_install()])
    survey([], api=api)
    assert {method for method, _ in api.requests} == {"GET"}


def test_a_broken_aggregated_api_does_not_change_the_answer():
    api = FakeKubeApi(installs.runbook_install())
    api.broken_discovery = True
    found = survey([], api=api)
    assert {known.ref for known in NATIVE_OBJECTS} == {obj.ref for obj in found.native}


@pytest.mark.parametrize(
    ("method", "plural", "namespace"),
    [
        ("LIST", "secrets", "metallb-system"),
        ("LIST", "deployments", None),
        ("GET", "namespaces", None),
        ("LIST", "ipaddresspools", "metallb-system"),
    ],
)
def test_a_denied_read_is_could_not_ask_not_nothing_there(method, plural, namespace):
    api = FakeKubeApi(installs.runbook_install())
    api.forbid(method, plural, namespace)
    with pytest.raises(KubectlError, match="forbidden"):
        survey([], api=api)


def test_an_unreachable_cluster_is_could_not_ask():
    with fake_cluster() as cluster, pytest.raises(KubectlError, match="refused"):
        survey_cluster(cluster.kubectl(UNREACHABLE_CONTEXT))


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("quay.io/metallb/controller:v0.14.3", "0.14.3"),
        ("quay.io/metallb/speaker:0.14.8", "0.14.8"),
        ("registry.local:5000/metallb/speaker:v0.14.3", "0.14.3"),
        ("quay.io/metallb/controller@sha256:" + "0" * 64, None),
        ("quay.io/metallb/controller:main", None),
    ],
)
def test_image_versions(image, version):
    assert image_version(image) == version


def test_a_configmap_record_is_decoded_too():
    secret = installs.helm_record("metallb", 1)
    configmap_payload = base64.b64decode(secret["data"]["release"]).decode()
    release = decode_helm_record("ConfigMap", {"release": configmap_payload})
    assert release["chart"]["metadata"]["name"] == "metallb"
