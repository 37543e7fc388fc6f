"""The Kubernetes manifests validate against a current Kubernetes schema (strict)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.system.releases import REPO

kubernetes_validate = pytest.importorskip("kubernetes_validate")

MANIFESTS = REPO / "packaging" / "kubernetes"
K8S_VERSION = "1.33.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def daemonset() -> dict[str, Any]:
    return next(doc for _, doc in documents() if doc["kind"] == "DaemonSet")


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[name for name, _ in documents()])
def test_every_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    """Strict schema validation: no unknown field, no wrong type."""
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validation_catches_a_broken_daemonset() -> None:
    """The check has teeth: a misspelt field fails it."""
    broken = copy.deepcopy(daemonset())
    broken["spec"]["template"]["spec"]["containerz"] = broken["spec"]["template"]["spec"].pop(
        "containers"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    """kubectl apply -k applies all of them."""
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk


class TestDaemonSet:
    def test_keeps_identity_on_the_node(self) -> None:
        """Config (agent-token) and state dirs are on a hostPath, so a new pod keeps them."""
        spec = daemonset()["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
        state_mount = mounts["state"]
        assert host_paths["state"] == "/var/lib/logpulse-agent"
        for var in ("LOGPULSE_CONFIG_DIR", "LOGPULSE_STATE_DIR"):
            assert env[var]["value"].startswith(state_mount + "/")

    def test_wires_what_vector_and_the_agent_need(self) -> None:
        """Node name for kubernetes_logs and for enrolment, platform, bootstrap token from the
        Secret, RBAC."""
        spec = daemonset()["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        for var in ("VECTOR_SELF_NODE_NAME", "LOGPULSE_NODE_NAME"):  # Vector's, enrolment's
            assert env[var]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
        assert env["LOGPULSE_PLATFORM"]["value"] == "kubernetes"
        secret_ref = env["LOGPULSE_ENROL_TOKEN"]["valueFrom"]["secretKeyRef"]
        secret = next(doc for _, doc in documents() if doc["kind"] == "Secret")
        assert secret_ref["name"] == secret["metadata"]["name"]
        assert secret_ref["key"] in secret["stringData"]
        assert spec["serviceAccountName"] == "logpulse-agent"
        role = next(doc for _, doc in documents() if doc["kind"] == "ClusterRole")
        assert set(role["rules"][0]["resources"]) == {"pods", "namespaces", "nodes"}
        assert set(role["rules"][0]["verbs"]) == {"get", "list", "watch"}

    def test_has_resources_liveness_and_a_long_grace_period(self) -> None:
        """Requests and limits, `logpulse-agent status` as liveness, > 60 s to stop Vector."""
        spec = daemonset()["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["livenessProbe"]["exec"]["command"] == ["logpulse-agent", "status"]
        assert spec["terminationGracePeriodSeconds"] > 60


def test_the_dockerfile_installs_the_release_layout() -> None:
    """The image is built from the verified release tarball (no docker engine here to build
    it; this pins the pieces the DaemonSet relies on)."""
    text = (REPO / "packaging" / "Dockerfile").read_text()
    assert "sha256sum -c" in text
    assert "/opt/logpulse-agent/current/logpulse-agent /usr/bin/logpulse-agent" in text
    assert 'ENTRYPOINT ["/usr/bin/logpulse-agent"]' in text
    assert "LOGPULSE_PLATFORM=kubernetes" in text
