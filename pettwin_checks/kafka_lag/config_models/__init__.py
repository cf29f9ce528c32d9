# This file is generated from pettwin_checks/kafka_lag/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.

from .instance import InstanceConfig
from .shared import SharedConfig


class ConfigMixin:
    _config_model_instance: InstanceConfig
    _config_model_shared: SharedConfig

    @property
    def config(self) -> InstanceConfig:
        return self._config_model_instance

    @property
    def shared_config(self) -> SharedConfig:
        return self._config_model_shared
