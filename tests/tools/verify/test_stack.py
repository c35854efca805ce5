"""A stack's configuration as verify reads it: secret values decrypted through the Pulumi CLI."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack_config import ConfigError
from tests.netns import network_namespace
from tests.program import PROJECT_DIR
from tests.standin_kubectl import calls
from tests.tools.verify.standin import HEALTHY, run_verify, serve
from tools.verify.stack import PRINTED_KEYS as PRINTED
from tools.verify.stack import read_stack_config, redact, secret_texts

# --- stacks that keep values as secrets ---------------------------------------------------------------

# What `pulumi config --stack kind-dev --show-secrets --json` prints when bootstrap.ip was set with
# `--secret --path` (configValueJSON in pulumi's pkg/cmd/pulumi/config/config.go: `value` holds the JSON
# text, `objectValue` the object; the whole object counts as secret).
DECRYPTED = {
    "macula-lan:kubeContext": {"value": "kind-macula-dev", "secret": False},
    "macula-lan:pools": {
        "value": '[{"addresses":["192.168.129.50-192.168.129.60"],"name":"lan-pool"}]',
        "objectValue": [{"addresses": ["192.168.129.50-192.168.129.60"], "name": "lan-pool"}],
        "secret": False,
    },
    "macula-lan:bootstrap": {
        "value": '{"hostname":"bootstrap.macula.local","ip":"192.168.129.51","pool":"lan-pool"}',
        "objectValue": {"hostname": "bootstrap.macula.local", "ip": "192.168.129.51", "pool": "lan-pool"},
        "secret": True,
    },
}


def secret_project(directory: Path) -> Path:
    """A copy of the project whose kind-dev keeps bootstrap.ip encrypted, as `--secret --path` writes it."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (PROJECT_DIR / "Pulumi.kind-dev.yaml").read_text()
    stack_file = stack_file.replace("ip: 192.168.129.51", "ip:\n      secure: v1:c2VjcmV0:ZW5jcnlwdGVk")
    assert "secure:" in stack_file
    (directory / "Pulumi.kind-dev.yaml").write_text(stack_file)
    return directory


def fake_pulumi(directory: Path, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    pulumi = directory / "pulumi"
    pulumi.write_text(f"#!{sys.executable}\nimport json, sys\n{body}\n")
    pulumi.chmod(0o755)
    return pulumi


def test_a_stack_with_secret_values_is_decrypted_and_checked(tmp_path):
    project = secret_project(tmp_path / "project")
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", f"print(json.dumps({DECRYPTED!r}))")

    stack = read_stack_config(project, "kind-dev", str(pulumi))

    assert stack.config.bootstrap is not None and str(stack.config.bootstrap.ip) == "192.168.129.51"
    assert stack.config.secret_keys == {"bootstrap"}
    # Every text of the secret object is kept out of what verify prints.
    assert stack.secrets == {"bootstrap.macula.local", "192.168.129.51", "lan-pool"}
    assert stack.redact("external IP 192.168.129.51, expected 192.168.129.51") == (
        "external IP [secret], expected [secret]"
    )


@pytest.mark.parametrize(
    ("pulumi_body", "reason"),
    [
        (
            "sys.stderr.write('error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE\\n'); sys.exit(1)",
            "(error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE)",
        ),
        ("print('[]')", "(it printed JSON that is no mapping of keys, but a list)"),
        ("print('{not json')", "(Expecting property name enclosed in double quotes"),
    ],
    ids=["no-passphrase", "no-mapping", "not-json"],
)
def test_secret_values_it_cannot_decrypt_are_named_and_exit_2(tmp_path, pulumi_body, reason):
    project = secret_project(tmp_path / "project")
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", pulumi_body)

    # In a namespace of its own, should verify ever go on to kind-dev's probes without the values.
    with network_namespace() as namespace:
        result = run_verify(
            tmp_path, "--stack", "kind-dev", "--project-dir", str(project), "--pulumi", str(pulumi),
            namespace=namespace,
        )  # fmt: skip

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("verify: stack kind-dev keeps bootstrap as secrets")
    assert reason in result.stderr
    # Without the values verify does not guess: a missing bootstrap would skip three checks as unset.
    assert "bootstrap is not configured" not in result.stdout


def beam00_alone(directory: Path) -> Path:
    """A project of beam00 only, its kubeContext kept as a secret."""
    directory.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", directory / "Pulumi.yaml")
    stack_file = (PROJECT_DIR / "Pulumi.beam00.yaml").read_text()
    stack_file = stack_file.replace(
        "macula-lan:kubeContext: beam00", "macula-lan:kubeContext:\n    secure: v1:c2VjcmV0:ZW5jcnlwdGVk"
    )
    assert "secure:" in stack_file
    (directory / "Pulumi.beam00.yaml").write_text(stack_file)
    return directory


SECRET_CONTEXT = "admin@beam00-lab"


def decrypted_beam00() -> dict[str, Any]:
    """What `pulumi config --show-secrets --json` prints for beam00_alone's stack, its context decrypted."""
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.beam00.yaml").read_text())["config"]
    listing = {
        key: {"value": json.dumps(value), "objectValue": value, "secret": False}
        for key, value in config.items()
        if isinstance(value, (dict, list))
    }
    return {**listing, "macula-lan:kubeContext": {"value": SECRET_CONTEXT, "secret": True}}


@pytest.mark.parametrize("which", [["--stack", "beam00"], ["--all"]], ids=["stack", "all"])
def test_a_secret_context_is_used_and_never_printed(tmp_path, which):
    project = beam00_alone(tmp_path / "project")
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", f"print(json.dumps({decrypted_beam00()!r}))")
    kubectl_dir = tmp_path / "bin"
    kubectl_dir.mkdir()
    serve(
        kubectl_dir,
        {**HEALTHY, "services": "services.json"},
        lambda text: text.replace("192.168.129.50-192.168.129.60", "192.168.129.70-192.168.129.80"),
    )

    result = run_verify(kubectl_dir, *which, "--project-dir", str(project), "--pulumi", str(pulumi))

    made = calls(kubectl_dir)
    assert made and all(call[:2] == ["--context", SECRET_CONTEXT] for call in made)
    assert SECRET_CONTEXT not in result.stdout + result.stderr
    assert "[secret]" in result.stdout
    assert result.returncode == 0


def test_a_secret_is_hidden_where_it_stands_whole_never_inside_a_longer_name():
    secrets = secret_texts("kind-dev", {"kubeContext": "dev", "bootstrap": {"ip": "FD00:0::51"}}, PRINTED)
    assert redact("context dev, stack kind-dev, node macula-dev-control-plane", secrets) == (
        "context [secret], stack kind-dev, node macula-dev-control-plane"
    )
    # As written in the stack file, and as Python and kubectl write it.
    assert redact("expected FD00:0::51, got [fd00::51]:4433/udp", secrets) == (
        "expected [secret], got [[secret]]:4433/udp"
    )
    # The stack's own name is public: it names the stack file.
    assert secret_texts("beam00", {"kubeContext": "beam00"}, PRINTED) == frozenset()


def test_only_what_verify_prints_is_hidden_in_its_output(tmp_path):
    project = secret_project(tmp_path / "project")
    dns_fix = {"host": "192.168.129.3", "user": "dev", "openFirewall": True}
    decrypted = {**DECRYPTED, "macula-lan:dnsFix": {"value": json.dumps(dns_fix), "objectValue": dns_fix}}
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", f"print(json.dumps({decrypted!r}))")
    stack_file = project / "Pulumi.kind-dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("user: macula", "user:\n      secure: v1:ZGV2"))

    stack = read_stack_config(project, "kind-dev", str(pulumi))

    assert "dev" not in stack.secrets  # dnsFix is the DNS fix's, never printed by verify


def test_an_invalid_decrypted_value_is_refused_without_being_said(tmp_path):
    project = secret_project(tmp_path / "project")
    outside = json.loads(json.dumps(DECRYPTED))
    outside["macula-lan:bootstrap"]["objectValue"]["ip"] = "192.168.129.99"
    pulumi = fake_pulumi(tmp_path / "pulumi-bin", f"print(json.dumps({outside!r}))")

    with pytest.raises(ConfigError) as refused:
        read_stack_config(project, "kind-dev", str(pulumi))

    assert "192.168.129.99" not in str(refused.value)
    assert "[secret]" in str(refused.value)
