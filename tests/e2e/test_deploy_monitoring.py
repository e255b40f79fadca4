"""The Grafana dashboard and the Prometheus alerts (deploy/) against what RedisGate exports.

A real `redisgate proxy` (PostgreSQL key source) and a real `redisgate control`, each its own
process on one fresh database, are scraped over HTTP; every metric name a dashboard panel, a
template variable or an alerting rule uses must be one of them (or one Prometheus makes
itself). `promtool` (Debian's prometheus package; `make test` installs it as root) checks the
rules and the Compose stack's Prometheus config, and runs the rules' unit tests
(deploy/prometheus/alerts_test.yml). Without promtool these tests fail, saying how to get it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from redisgate.launcher.process import free_port
from tests.conftest import TEST_SECRET_KEY
from tests.e2e.test_proxy_process import Proxy, start_proxy, wait_for  # noqa: F401

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "redisgate.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
METRICS_URL = re.compile(r"gateway metrics on (http://\S+/metrics)")
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
}


# --- What the expressions use ------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        word = match.group(1)
        if word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable["type"] == "query" and query:
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            exprs.append(inner.group(1) if inner else query)
    return exprs


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_name_extraction_finds_metrics_and_only_metrics() -> None:
    """The check below is only as good as this: it must not miss or invent names."""
    expr = (
        "histogram_quantile(0.99, sum by (le, part) (rate(redisgate_command_latency_seconds_"
        'bucket{job="redisgate-gateway", part=~"gate.*"}[$__rate_interval]))) / on (instance) '
        "group_left up > bool 0.5 or changes(process_start_time_seconds[1h]) unless x:y_z"
    )
    assert metric_names(expr) == {
        "redisgate_command_latency_seconds_bucket",
        "up",
        "process_start_time_seconds",
        "x:y_z",
    }
    assert jobs_selecting("redisgate_command_latency_seconds_bucket", expr) == {"redisgate-gateway"}
    assert jobs_selecting("up", expr) == {None}


# --- What RedisGate exports ---------------------------------------------------------------------


def exported_names(text: str) -> set[str]:
    """Every series name an exposition can carry, from its families (empty ones included)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def control_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A real `redisgate control` process on the database (settings from REDISGATE_*)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISGATE_")}
    env |= {
        "REDISGATE_DATABASE_URL": database_url,
        "REDISGATE_CONTROL_HOST": "127.0.0.1",
        "REDISGATE_CONTROL_PORT": str(port),
        "REDISGATE_DATA_DIR": str(tmp_path / "control"),
        "REDISGATE_BACKEND_SECRET_KEYS": TEST_SECRET_KEY,
        "REDISGATE_JWT_SECRET": "deploy-monitoring-test-secret-0123456789abcdef",
        "REDISGATE_PROVISIONER": "static",
    }
    log_path = tmp_path / "control.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "redisgate", "control"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, f"control exited:\n{log_path.read_text()}"
            return answers(f"{url}/readyz")

        wait_for(ready, "the control API to be ready", 30.0)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


@pytest.fixture
def exported(
    database_url: str,
    control_url: str,
    start_proxy: Callable[..., Proxy],  # noqa: F811
) -> dict[str, set[str]]:
    """Metric names of a live gateway's and a live control API's /metrics, after some traffic."""
    gateway = start_proxy("--database-url", database_url, "--port", "0")
    port = gateway.port()
    found: list[str] = []

    def metrics_url() -> bool:
        if match := METRICS_URL.search(gateway.log):
            found.append(match.group(1))
        return bool(found)

    wait_for(metrics_url, "the gateway's metrics endpoint")
    # Some traffic on both planes: an unauthenticated command, a bad key, API requests.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PING\r\nAUTH rg_nosuchkey_secret\r\n")
        sock.recv(1024)
    urllib.request.urlopen(f"{control_url}/healthz", timeout=10).close()
    return {
        "gateway": exported_names(scrape(found[0])),
        "control": exported_names(scrape(f"{control_url}/metrics")),
    }


def jobs_selecting(name: str, expr: str) -> set[str | None]:
    """The `job` each selector of `name` in `expr` names (None: a selector without one)."""
    found: set[str | None] = set()
    for match in re.finditer(r"(?<![\w:])" + re.escape(name) + r"\b(\s*\{[^}]*\})?", expr):
        job = re.search(r'\bjob\s*=\s*"([^"]*)"', match.group(1) or "")
        found.add(job.group(1) if job else None)
    return found


def test_dashboard_and_alerts_use_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    """Each name must be exported by the plane its selector's job scrapes (both planes share
    one registry declaration, so the control API also lists the gateway's families, empty:
    the job decides which scrape counts)."""
    gateway, control = exported["gateway"], exported["control"]
    # Sanity: the scrapes are the two planes' (so a wrong endpoint cannot pass as empty).
    assert "redisgate_commands_total" in gateway
    assert "redisgate_http_requests_total" in control
    by_job = {
        "redisgate-gateway": gateway | PROMETHEUS_OWN,
        "redisgate-control": control | PROMETHEUS_OWN,
        None: gateway | control | PROMETHEUS_OWN,
    }
    for source, exprs in (("dashboard", dashboard_expressions()), ("alerts", alert_expressions())):
        checked = set()
        for expr in exprs:
            for name in metric_names(expr):
                for job in jobs_selecting(name, expr):
                    assert job in by_job, f"{source}: unknown job {job!r} in {expr}"
                    assert name in by_job[job], f"{source}: {job} does not export {name}: {expr}"
                    checked.add(name)
        assert {"redisgate_commands_total", "redisgate_http_requests_total"} <= checked


def test_dashboard_covers_what_operators_watch() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    assert used >= {
        "redisgate_client_connections",
        "redisgate_commands_total",
        "redisgate_command_latency_seconds_bucket",
        "redisgate_commands_denied_total",
        "redisgate_limit_rejections_total",
        "redisgate_backend_connections",
        "redisgate_notify_lag_seconds_bucket",
        "redisgate_usage_flush_failures_total",
        "redisgate_http_requests_total",
        "redisgate_http_request_duration_seconds_bucket",
    }


# --- promtool -----------------------------------------------------------------------------------


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: it comes with Debian's prometheus package. `make test` "
            "installs it when run as root (scripts/install-system-deps.sh --optional "
            "prometheus); otherwise: sudo apt-get install prometheus"
        )
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_checks_the_rules(promtool: str) -> None:
    done = run(promtool, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    count = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in done.stdout


def test_promtool_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """So a passing check means something: a syntax error in an expression fails it."""
    rules: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    rules["groups"][0]["rules"][0]["expr"] = "sum(rate(redisgate_commands_total[5m]) > "
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(rules))
    assert run(promtool, "check", "rules", str(broken)).returncode != 0


def test_promtool_unit_tests_of_the_alerts(promtool: str) -> None:
    done = run(promtool, "test", "rules", str(DEPLOY / "prometheus" / "alerts_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_checks_the_compose_prometheus_config(promtool: str, tmp_path: Path) -> None:
    """deploy/prometheus/prometheus.yml with its rule file where the container mounts it."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
