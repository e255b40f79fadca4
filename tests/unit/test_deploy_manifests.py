"""deploy/ checked offline, in about a second: the Kubernetes manifests against the API schemas
of a pinned Kubernetes version (kubernetes-validate, no cluster), how the objects refer to each
other, the Compose file's structure, the image's Dockerfile, and every REDISGATE_* variable
the deploy files set being a real setting (so a renamed setting cannot silently stop applying).

`make deploy-test` runs the Compose stack for real; tests/e2e/test_deploy_monitoring.py checks
the dashboard's and the alerts' metric names against live scrapes and the rules with promtool.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from redisgate.config import SPECS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
# The Kubernetes version the manifests are validated against (a supported release).
K8S_VERSION = "1.30.0"
# Kinds of CRDs the schemas do not include: checked by hand below.
CRD_KINDS = {"Kustomization", "ServiceMonitor"}
SETTING_ENVS = {spec.env for spec in SPECS}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in load_all(path)
        if doc["kind"] not in CRD_KINDS
    ]


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def pod_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects("Deployment")[name]["spec"]["template"]["spec"]
    return spec


def container(name: str) -> dict[str, Any]:
    found: dict[str, Any] = pod_spec(name)["containers"][0]
    return found


def configmap_env() -> dict[str, str]:
    data: dict[str, str] = objects("ConfigMap")["redisgate-config"]["data"]
    return data


# --- Kubernetes: schemas --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "doc"),
    manifests(),
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in manifests()],
)
def test_manifest_is_valid_for_the_pinned_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_misspelled_field() -> None:
    """The check above can fail: strict validation refuses fields the API does not have."""
    _, deployment = next(m for m in manifests() if m[1]["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_generates_the_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "servicemonitor.yaml"}
    assert listed == on_disk
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == "redisgate-secrets"
    assert generator["envs"] == ["secrets.env"]
    assert "secrets.env" in (K8S / ".gitignore").read_text().split()
    example = env_file(K8S / "secrets.env.example")
    assert set(example) == {
        "REDISGATE_DATABASE_URL",
        "REDISGATE_JWT_SECRET",
        "REDISGATE_BACKEND_SECRET_KEYS",
    }


def test_service_monitor_names_the_jobs_the_alerts_use() -> None:
    (monitor,) = load_all(K8S / "servicemonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    label = monitor["spec"]["jobLabel"]
    jobs = {
        svc["metadata"]["labels"][label]: svc
        for svc in objects("Service").values()
        if label in svc["metadata"]["labels"]
    }
    assert set(jobs) == {"redisgate-gateway", "redisgate-control"}
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    for svc in jobs.values():
        assert ports & {p["name"] for p in svc["spec"]["ports"]}


# --- Kubernetes: how the objects fit together -------------------------------------------------


def test_services_select_pods_and_name_their_ports() -> None:
    deployments = objects("Deployment")
    for svc in objects("Service").values():
        selector = svc["spec"]["selector"]
        (target,) = [
            d for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        ports = {p["name"] for p in target["spec"]["template"]["spec"]["containers"][0]["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports, (svc["metadata"]["name"], port)


def test_gateways_scale_out_and_are_protected_during_disruptions() -> None:
    gateway = objects("Deployment")["redisgate-gateway"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert gateway["spec"]["replicas"] >= 2
    pdb = objects("PodDisruptionBudget")["redisgate-gateway"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = objects("HorizontalPodAutoscaler")["redisgate-gateway"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "redisgate-gateway"
    assert hpa["spec"]["minReplicas"] >= 2
    # The RESP port and the HTTP command API's face clients, as the configmap sets them.
    client_ports = [p["port"] for p in objects("Service")["redisgate-gateway"]["spec"]["ports"]]
    env = configmap_env()
    assert client_ports == [int(env["REDISGATE_PROXY_PORT"]), int(env["REDISGATE_HTTP_PORT"])]
    container_ports = {
        p["name"]: p["containerPort"] for p in container("redisgate-gateway")["ports"]
    }
    assert container_ports["http"] == int(env["REDISGATE_HTTP_PORT"])
    policy = objects("NetworkPolicy")["redisgate-gateway"]["spec"]["ingress"][0]["ports"]
    assert {p["port"] for p in policy} == set(client_ports)


def test_gateway_drains_within_its_grace_period() -> None:
    """preStop sleep + shutdown_timeout_s must fit in terminationGracePeriodSeconds."""
    spec = pod_spec("redisgate-gateway")
    gateway = container("redisgate-gateway")
    command = gateway["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    shutdown_s = float(configmap_env()["REDISGATE_SHUTDOWN_TIMEOUT_S"])
    assert spec["terminationGracePeriodSeconds"] >= float(command[1]) + shutdown_s + 5


def test_probes_use_the_health_endpoints() -> None:
    gateway = container("redisgate-gateway")
    metrics_port = {p["name"]: p["containerPort"] for p in gateway["ports"]}["metrics"]
    assert metrics_port == int(configmap_env()["REDISGATE_METRICS_PORT"])
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    control = container("redisgate-control")
    assert control["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert control["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_pods_run_unprivileged_and_wait_for_migrations() -> None:
    for name in ("redisgate-gateway", "redisgate-control"):
        spec = pod_spec(name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"] + spec["initContainers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert "memory" in c["resources"]["limits"]
        assert spec["initContainers"][0]["args"] == ["migrate", "--check"]
    job = objects("Job")["redisgate-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_gateway_memory_limit_covers_its_buffer_caps() -> None:
    """The gateway's total request and reply caps (configmap) fit under its memory limit."""
    env = configmap_env()
    caps = int(env["REDISGATE_MAX_TOTAL_REQUEST_BYTES"]) + int(
        env["REDISGATE_MAX_TOTAL_REPLY_BYTES"]
    )
    limit = container("redisgate-gateway")["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    assert int(limit[:-2]) * 2**20 >= caps + 128 * 2**20


def test_gateway_egress_is_postgres_redis_and_dns_only() -> None:
    policy = objects("NetworkPolicy")["redisgate-gateway"]
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(5432, "TCP"), (6379, "TCP"), (53, "UDP"), (53, "TCP")}
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without `to` opens every destination"


# --- Settings named by deploy files -----------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            found[name.strip()] = value.strip()
    return found


def deploy_setting_names() -> set[str]:
    names: set[str] = set()
    for path in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), DEPLOY / "Dockerfile"]:
        names |= set(re.findall(r"\bREDISGATE_[A-Z0-9_]+", path.read_text()))
    names |= {n for n in env_file(DEPLOY / ".env.example") if n.startswith("REDISGATE_")}
    names |= set(env_file(K8S / "secrets.env.example"))
    return names


def test_every_redisgate_variable_is_a_setting() -> None:
    names = deploy_setting_names()
    # Not settings: the Compose file's image variable.
    unknown = names - SETTING_ENVS - {"REDISGATE_IMAGE"}
    assert not unknown, f"not RedisGate settings (README.md, Configuration): {sorted(unknown)}"
    assert {"REDISGATE_DATABASE_URL", "REDISGATE_PROXY_PORT"} <= names


# --- Compose ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_has_the_whole_stack() -> None:
    services = compose()["services"]
    gateways = [n for n, s in services.items() if s.get("command") == ["proxy"]]
    assert len(gateways) >= 2
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["control"]["command"] == ["control"]
    for name in [*gateways, "control"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert "REDISGATE_DATABASE_URL" in services[name]["environment"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in gateways:
        assert services[name]["stop_signal"] == "SIGTERM"
        grace = services[name]["stop_grace_period"]
        timeout = float(services[name]["environment"]["REDISGATE_SHUTDOWN_TIMEOUT_S"])
        assert grace.endswith("s") and float(grace[:-1]) > timeout
    assert services["grafana"]["profiles"] == ["grafana"]
    assert "healthcheck" in services["postgres"]
    assert "build" in services["migrate"]
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_prometheus_scrapes_every_gateway_and_the_control_api() -> None:
    services = compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
        for job in config["scrape_configs"]
    }
    gateways = {n for n, s in services.items() if s.get("command") == ["proxy"]}
    port = {
        s["environment"]["REDISGATE_METRICS_PORT"] for n, s in services.items() if n in gateways
    }
    assert targets["redisgate-gateway"] == {f"{n}:{p}" for n in gateways for p in port}
    control_port = services["control"]["environment"]["REDISGATE_CONTROL_PORT"]
    assert targets["redisgate-control"] == {f"control:{control_port}"}


def test_compose_mounts_and_variables_exist() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
    # Every variable the file reads is documented in the example .env (secrets included).
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = env_file(DEPLOY / ".env.example")
    assert used - {"GATEWAY_PUBLIC_HOST"} <= set(example), used - set(example)
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
    # Secrets have no defaults: Compose refuses to start without them.
    for secret in ("POSTGRES_PASSWORD", "REDISGATE_JWT_SECRET", "REDISGATE_BACKEND_SECRET_KEYS"):
        assert re.search(r"\$\{" + secret + r":\?", text), secret
        assert f"${{{secret}:-" not in text


# --- Image ------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_unprivileged_and_checked() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in text
    assert len(re.findall(r"^FROM \$\{BASE_IMAGE\}", text, re.M)) == 2
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^HEALTHCHECK .*redisgate-healthcheck", text, re.M | re.S)
    assert 'ENTRYPOINT ["redisgate"]' in text
    assert "PIP_NO_INDEX=1" in text
    assert re.search(r"^LABEL org\.opencontainers\.image\.", text, re.M)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[0] == "*" or "*" in ignore
    for needed in ("pyproject.toml", "README.md", "redisgate/", "migrations/"):
        assert f"!{needed}" in ignore


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "redisgate.json").read_text())
    assert dashboard["uid"] == "redisgate"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert panel["datasource"]["uid"] == "${datasource}"
    provisioning = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "redisgate.yml").read_text()
    )
    mount = next(
        v for v in compose()["services"]["grafana"]["volumes"] if "redisgate.json" in v
    ).split(":")[1]
    assert mount.startswith(provisioning["providers"][0]["options"]["path"] + "/")
