"""The deploy files: compose validated by Debian's docker-compose, the Dockerfiles' structure (they are not
built here: no engine), the Kubernetes manifests, and every series the dashboards and alerts query exists."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

import services.common.metrics  # noqa: F401 (registers every earshot_ metric)
from services.common.settings import REPO_ROOT
from services.common.topology import CRY_CLASSIFY_QUEUE, KWS_SCAN_QUEUE

DEPLOY = REPO_ROOT / "deploy"
SERVICES = ("gateway", "store", "classifier", "kws")
WORKER_QUEUES = {"classifier": CRY_CLASSIFY_QUEUE, "kws": KWS_SCAN_QUEUE}
COMPOSE_SECRETS = {"RABBITMQ_PASSWORD": "r", "POSTGRES_PASSWORD": "p", "GRAFANA_ADMIN_PASSWORD": "g"}
ALERT_RULES = DEPLOY / "grafana" / "provisioning" / "alerting" / "earshot-alerts.yaml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
RABBITMQ_PROMETHEUS = os.environ.get("EARSHOT_TEST_RABBITMQ_PROMETHEUS", "http://127.0.0.1:15692")


def compose_config(text: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``docker-compose config -q`` on ``text`` as if it were deploy/compose.yaml (same relative paths)."""
    executable = shutil.which("docker-compose")
    assert executable, "Debian's docker-compose validates the compose file: run `make setup`"
    return subprocess.run(
        [executable, "--project-directory", str(DEPLOY), "-f", "-", "config", "-q"],
        input=text, capture_output=True, text=True, timeout=60, cwd=DEPLOY,
        env={**os.environ, **(COMPOSE_SECRETS if env is None else env)},
    )  # fmt: skip


def test_compose_file_is_valid_and_a_broken_one_is_refused() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    valid = compose_config(text)
    assert valid.returncode == 0, valid.stderr

    broken_type = text.replace("replicas: 2", "replicas: two", 1)
    unknown_key = text.replace("    restart: unless-stopped", "    restart_policy_typo: unless-stopped", 1)
    for broken in (broken_type, unknown_key):
        assert broken != text
        assert compose_config(broken).returncode != 0
    missing_secret = compose_config(text, env={})
    assert missing_secret.returncode != 0 and "RABBITMQ_PASSWORD" in missing_secret.stderr


def test_compose_runs_the_whole_stack_in_order_with_replicas() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    expected = {"rabbitmq", "rabbitmq-definitions", "postgres", "migrate", "prometheus", "grafana", *SERVICES}
    assert expected <= set(services)
    for name in ("store", "classifier", "kws"):
        assert services[name]["deploy"]["replicas"] >= 2, name
    for name in SERVICES:
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully", name
        assert after["rabbitmq-definitions"]["condition"] == "service_completed_successfully", name
        assert services[name]["build"]["dockerfile"] == f"deploy/docker/{name}.Dockerfile", name
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    rabbit_volumes = " ".join(services["rabbitmq"]["volumes"])
    assert "enabled_plugins:/etc/rabbitmq/enabled_plugins" in rabbit_volumes
    assert "definitions.json:/definitions.json" in " ".join(services["rabbitmq-definitions"]["volumes"])


@pytest.mark.parametrize("service", SERVICES)
def test_each_dockerfile_is_slim_torch_free_non_root_and_healthchecked(service: str) -> None:
    lines = [line.strip() for line in (DEPLOY / "docker" / f"{service}.Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert re.fullmatch(r"FROM python:3\.\d+-slim(-\w+)?", instructions[0])
    text = "\n".join(instructions)
    assert "pip install -r requirements/runtime.txt" in text
    assert not re.search(r"torch|train\.txt|dev\.txt", text)
    assert not any(re.match(r"torch\b", line) for line in (REPO_ROOT / "requirements" / "runtime.txt").open())
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert any(line.startswith("HEALTHCHECK ") for line in instructions)
    assert instructions[-1] == f'CMD ["python", "-m", "services.{service}", "run"]'


def k8s_documents() -> list[dict]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents += [document for document in yaml.safe_load_all(path.read_text()) if document]
    return documents


def test_kubernetes_has_probed_deployments_services_budgets_and_queue_scalers() -> None:
    documents = k8s_documents()
    by_kind: dict[str, dict[str, dict]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    for service in SERVICES:
        name = f"earshot-{service}"
        deployment = by_kind["Deployment"][name]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["path"].startswith("/"), (name, probe)
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert by_kind["Service"][name]["spec"]["selector"].items() <= pod_labels.items()
        budget = by_kind["PodDisruptionBudget"][name]["spec"]["selector"]["matchLabels"]
        assert budget.items() <= pod_labels.items(), name
    for service, queue in WORKER_QUEUES.items():
        scaler = by_kind["ScaledObject"][f"earshot-{service}"]["spec"]
        assert scaler["scaleTargetRef"]["name"] == f"earshot-{service}"
        (trigger,) = scaler["triggers"]
        assert trigger["type"] == "rabbitmq" and trigger["metadata"]["queueName"] == queue
        assert trigger["metadata"]["mode"] == "QueueLength"
    rabbitmq = next(iter(by_kind["RabbitmqCluster"].values()))["spec"]
    assert rabbitmq["replicas"] >= 3, "quorum queues need at least three RabbitMQ nodes"
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(rabbitmq["rabbitmq"]["additionalPlugins"])


def queried_expressions() -> list[str]:
    """Every PromQL expression of the dashboards and the alert rules."""
    expressions = []
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            expressions += [target["expr"] for target in panel.get("targets", [])]
    alerting = yaml.safe_load(ALERT_RULES.read_text())
    for group in alerting["groups"]:
        for rule in group["rules"]:
            expressions += [query["model"]["expr"] for query in rule["data"] if "expr" in query["model"]]
    return expressions


def earshot_series() -> set[str]:
    """The sample names the services' metrics produce (a counter ``x`` is scraped as ``x_total``…)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "info": ("_info",)}
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def rabbitmq_series() -> set[str]:
    """The series the local broker's plugin exposes for the families Prometheus is configured to scrape."""
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    detailed = next(job for job in scrape if job.get("metrics_path") == "/metrics/detailed")
    params = [("family", family) for family in detailed["params"]["family"]]
    text = httpx.get(f"{RABBITMQ_PROMETHEUS}/metrics/detailed", params=params, timeout=10).text
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_every_series_the_dashboards_and_alerts_query_exists() -> None:
    expressions = queried_expressions()
    used = {name for expr in expressions for name in re.findall(r"\b(?:earshot|rabbitmq)_\w+", expr)}
    assert used, "no expressions found"
    known = earshot_series() | rabbitmq_series()
    assert used - known == set(), f"unknown series: {sorted(used - known)}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    titles = " | ".join(
        panel["title"].lower()
        for path in (DEPLOY / "grafana" / "dashboards").glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
    )
    topics = ["ready", "unacked", "dead-letter", "publish", "deliver", "ack", "redeliver", "consumers"]
    topics += ["job latency", "errors by reason", "model latency", "http latency", "model versions"]
    for topic in topics:
        assert topic in titles, topic
    expressions = " ".join(queried_expressions())
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, kind) (rate(earshot_job_end_to_end" in expressions


def test_alert_rules_cover_dead_letters_growing_age_and_missing_consumers() -> None:
    alerting = yaml.safe_load(ALERT_RULES.read_text())
    prometheus_uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    rules = {rule["uid"]: rule for group in alerting["groups"] for rule in group["rules"]}
    wanted = {"earshot-dead-letters", "earshot-oldest-message-age-growing", "earshot-no-consumers"}
    assert wanted <= set(rules)
    for rule in rules.values():
        queries = {query["refId"]: query for query in rule["data"]}
        assert rule["condition"] in queries
        assert queries["A"]["datasourceUid"] == prometheus_uid
        assert queries[rule["condition"]]["model"]["expression"] == "A"


def test_the_compose_prometheus_scrapes_every_service_on_its_port() -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {
        config["names"][0]: config["port"] for job in scrape for config in job.get("dns_sd_configs", [])
    }
    images = {name: Path(DEPLOY / "docker" / f"{name}.Dockerfile").read_text() for name in SERVICES}
    for name in SERVICES:
        assert f"EXPOSE {targets[name]}" in images[name], name
