"""stack_config.files: Pulumi.yaml, the stack files and the running stack's config, read robustly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pulumi.runtime
import pytest

from stack_config import ConfigError, load_stack_file_config
from stack_config.files import current_stack_values
from tests.program import PROJECT, PROJECT_DIR, ProgramRun, run_program, stack_file_config

A_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml (with its LAN plan) and committed stack files."""
    for path in PROJECT_DIR.glob("Pulumi*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def write_stack(project: Path, stack: str, config: str) -> None:
    (project / f"Pulumi.{stack}.yaml").write_text(config)


BEAM09 = (
    "config:\n"
    f"  {PROJECT}:kubeContext: beam09\n"
    f"  {PROJECT}:pools:\n    - name: lan-pool\n      addresses: [192.168.129.110-192.168.129.120]\n"
)


def test_a_stack_file_read_by_the_tools_decodes_values_set_without_path(project: Path):
    write_stack(
        project,
        "beam09",
        BEAM09 + f'  {PROJECT}:strictArp: "true"\n  {PROJECT}:sshPrivateKey:\n    secure: AAABAHZhbHVl\n',
    )
    config = load_stack_file_config(project, "beam09")
    assert config.strict_arp is True
    assert config.pools[0].name == "lan-pool"


@pytest.mark.parametrize("written", ['"2024"', "2024"], ids=["quoted", "unquoted"])
def test_a_context_that_looks_like_a_number_stays_text(project: Path, written: str):
    write_stack(project, "beam09", BEAM09.replace("kubeContext: beam09", f"kubeContext: {written}"))
    assert load_stack_file_config(project, "beam09").kube_context == "2024"


def test_the_running_stacks_values_are_decoded_by_key():
    # The engine hands every value over as text: "2024" for kubeContext: "2024" and for 2024 alike.
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:kubeContext": "2024", f"{PROJECT}:strictArp": "true", f"{PROJECT}:sshPrivateKey": "k"},
        [f"{PROJECT}:sshPrivateKey"],
    )
    values, secret = current_stack_values(PROJECT)
    assert values == {"kubeContext": "2024", "strictArp": True, "sshPrivateKey": "k"}
    assert secret == {"sshPrivateKey"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("config: [a, b\n", ["Pulumi.beam09.yaml is not valid YAML"]),
        ("- just\n- a list\n", ["Pulumi.beam09.yaml is not a YAML mapping (it holds list)"]),
        ("config: kubeContext\n", ["Pulumi.beam09.yaml: `config` is not a mapping"]),
        (
            BEAM09.replace("192.168.129.110-192.168.129.120", "nonsense"),
            ['stack "beam09" has invalid pools (Pulumi.beam09.yaml)', '"nonsense"'],
        ),
    ],
    ids=["not-yaml", "not-a-mapping", "config-not-a-mapping", "invalid-pools"],
)
def test_a_malformed_other_stack_file_is_one_error_naming_it(project: Path, text: str, words: list[str]):
    write_stack(project, "beam09", text)
    with pytest.raises(ConfigError) as caught:
        load_stack_file_config(project, "beam00")
    for word in words:
        assert word in str(caught.value)


def test_a_plaintext_private_key_in_a_stack_file_is_refused_without_echoing_it(project: Path):
    key = A_PRIVATE_KEY.replace("\n", "\\n")
    dns_fix = f"  {PROJECT}:dnsFix:\n    host: 192.168.129.3\n    user: macula\n"
    write_stack(project, "beam09", BEAM09 + dns_fix + f'  {PROJECT}:sshPrivateKey: "{key}"\n')
    with pytest.raises(ConfigError) as caught:
        load_stack_file_config(project, "beam09")
    message = str(caught.value)
    assert f"{PROJECT}:sshPrivateKey: is stored in plaintext (value not shown)" in message
    assert "pulumi config set --stack beam09 --secret sshPrivateKey" in message
    assert "b3BlbnNzaC1rZXktdjE" not in message


def test_the_program_refuses_a_private_key_that_is_not_secret_and_takes_one_that_is():
    config = stack_file_config("kind-dev")
    config[f"{PROJECT}:sshPrivateKey"] = A_PRIVATE_KEY
    run = ProgramRun()
    with pytest.raises(ConfigError, match="is stored in plaintext"):
        run_program("kind-dev", config, run=run)
    assert run.resources == []
    assert run_program("kind-dev", config, secret_keys=[f"{PROJECT}:sshPrivateKey"]).resources


def test_a_stack_on_another_network_has_its_own_lan(project: Path):
    kind_network = BEAM09.replace("192.168.129.110-192.168.129.120", "172.18.255.200-172.18.255.210")
    write_stack(project, "e2e", kind_network + f"  {PROJECT}:lan:\n    subnet: 172.18.0.0/16\n")
    assert load_stack_file_config(project, "e2e").pools[0].addresses[0].size == 11
    # Without its own plan, Pulumi.yaml's LAN refuses the range.
    write_stack(project, "e2e", kind_network)
    with pytest.raises(
        ConfigError, match=r"outside the LAN 192\.168\.128\.0/23 \(Pulumi\.yaml lan\.subnet\)"
    ):
        load_stack_file_config(project, "e2e")


def test_a_project_without_a_lan_plan_says_where_it_goes(project: Path):
    (project / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime: python\n")
    with pytest.raises(ConfigError, match=f"Pulumi.yaml has no LAN plan: add {PROJECT}:lan under `config:`"):
        load_stack_file_config(project, "beam00")
