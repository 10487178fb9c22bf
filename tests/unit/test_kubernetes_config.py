"""Where the Kubernetes backend gets its credentials, and the configuration errors it raises, without an API
server (the wire is tested against an HTTP double in ``tests/integration/test_kubernetes_backend.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gamead_core.config.autoscaler import KubernetesScalerSettings
from gamead_core.errors import ConfigError
from gamead_core.scaling.kubernetes import KubernetesScaler, config_source

#: a valid kubeconfig with one context, ``double``
KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "double", "cluster": {"server": "http://127.0.0.1:1"}}],
    "users": [{"name": "autoscaler", "user": {"token": "t"}}],
    "contexts": [{"name": "double", "context": {"cluster": "double", "user": "autoscaler"}}],
    "current-context": "double",
}


def test_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    settings = KubernetesScalerSettings(kubeconfig=str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=f"kubeconfig {tmp_path / 'absent'}"):
        KubernetesScaler(settings, environ={})


def test_malformed_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot load Kubernetes credentials"):
        KubernetesScaler(KubernetesScalerSettings(kubeconfig=str(path)), environ={})


def test_unknown_context_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    with pytest.raises(ConfigError, match="nope"):
        KubernetesScaler(KubernetesScalerSettings(kubeconfig=str(path), context="nope"), environ={})


def test_config_source_prefers_explicit_file_then_pod_then_kubeconfig() -> None:
    in_pod = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert config_source(KubernetesScalerSettings(kubeconfig="/x"), in_pod) == "kubeconfig"
    assert config_source(KubernetesScalerSettings(), in_pod) == "in-cluster"
    assert config_source(KubernetesScalerSettings(), {}) == "kubeconfig"


def test_in_cluster_without_a_service_account_is_a_config_error() -> None:
    settings = KubernetesScalerSettings()
    with pytest.raises(ConfigError, match="service account"):
        KubernetesScaler(settings, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
