"""The typed configuration of one stack, read and validated before any resource is declared.

Everything a stack may set lives under the project's namespace in `Pulumi.<stack>.yaml`; the LAN plan
that every stack shares lives in Pulumi.yaml. The readers collect every problem they find and raise them
together as one `ConfigError`, each line naming the file, the key and the bad value, so a user fixes a file
in one pass instead of one error per `pulumi preview`.

- `model`: the dataclasses a StackConfig is made of;
- `addresses`: the one parser of pool addresses, matching MetalLB's;
- `fields`: the problem collector and the checks of single values;
- `parsing`: one stack's values into a StackConfig;
- `fleet`: the LAN plan, the checks of pools against it and the other stacks, and allocation;
- `files`: Pulumi.yaml, the stack files and the running stack's config.
"""

from stack_config.files import load_stack_config, load_stack_file_config, read_fleet
from stack_config.fleet import Fleet
from stack_config.model import (
    DEFAULT_BOOTSTRAP_HOSTNAME,
    DEFAULT_BOOTSTRAP_PORT,
    DEFAULT_CHART_REPOSITORY,
    DEFAULT_CHART_VERSION,
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    AddressBlock,
    AdvertisementConfig,
    BootstrapConfig,
    ChartConfig,
    ConfigError,
    DnsFixConfig,
    IPAddress,
    LanPlan,
    PoolConfig,
    Reservation,
    StackConfig,
)
from stack_config.parsing import parse_stack_config

__all__ = [
    "DEFAULT_BOOTSTRAP_HOSTNAME",
    "DEFAULT_BOOTSTRAP_PORT",
    "DEFAULT_CHART_REPOSITORY",
    "DEFAULT_CHART_VERSION",
    "DEFAULT_WEBHOOK_TIMEOUT_SECONDS",
    "AddressBlock",
    "AdvertisementConfig",
    "BootstrapConfig",
    "ChartConfig",
    "ConfigError",
    "DnsFixConfig",
    "Fleet",
    "IPAddress",
    "LanPlan",
    "PoolConfig",
    "Reservation",
    "StackConfig",
    "load_stack_config",
    "load_stack_file_config",
    "parse_stack_config",
    "read_fleet",
]
