"""A stack's configuration as verify reads it: secret values decrypted through the Pulumi CLI."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.netns import network_namespace
from tests.program import PROJECT_DIR
from tests.tools.verify.standin import run_verify
from tools.verify.stack import read_stack_config

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

    config = read_stack_config(project, "kind-dev", str(pulumi))

    assert config.bootstrap is not None and str(config.bootstrap.ip) == "192.168.129.51"
    assert config.secret_keys == {"bootstrap"}


def test_secret_values_it_cannot_decrypt_are_named_and_exit_2(tmp_path):
    project = secret_project(tmp_path / "project")
    pulumi = fake_pulumi(
        tmp_path / "pulumi-bin",
        "sys.stderr.write('error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE\\n'); sys.exit(1)",
    )

    # In a namespace of its own, should verify ever go on to kind-dev's probes without the values.
    with network_namespace() as namespace:
        result = run_verify(
            tmp_path, "--stack", "kind-dev", "--project-dir", str(project), "--pulumi", str(pulumi),
            namespace=namespace,
        )  # fmt: skip

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("verify: stack kind-dev keeps bootstrap as secrets")
    assert "(error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE)" in result.stderr
    # Without the values verify does not guess: a missing bootstrap would skip three checks as unset.
    assert "bootstrap is not configured" not in result.stdout
