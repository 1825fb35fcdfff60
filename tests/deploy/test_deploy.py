"""Deployment artifacts: the image, the Dagster chart values, the admin API manifests, the alerts.

No cluster and no Docker engine here, so each artifact is checked by the tool that owns
its format, offline: the chart's own values.schema.json (jsonschema), kubernetes-validate
--strict (the Kubernetes OpenAPI schemas), promtool (Prometheus rules and their unit
tests), Dagster's config validation (the job with the k8s executor).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import require

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
PROMETHEUS = DEPLOY / "prometheus"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
# The chart's values.yaml and values.schema.json at one commit (see its README); beside the repo.
CHART_DIR = Path(os.environ.get("FINOPS_DAGSTER_HELM_DIR") or ROOT.parent / "shared" / "dagster-helm")

# Kubernetes versions the manifests are validated against: an old one still in support
# and the newest the installed kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.29.0", "latest")
CUSTOM_RESOURCES = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}
IMAGE_UID = 10001
RELEASE = "dagster"  # the Helm release name docs/kubernetes.md installs the chart under


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def helm_merge(defaults: Any, override: Any) -> Any:
    """Helm's coalescing of a values file over the chart's: maps merge, lists and scalars
    replace, and a null removes the key."""
    if isinstance(defaults, dict) and isinstance(override, dict):
        merged = dict(defaults)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = helm_merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    return override


def manifest_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def manifests_by_kind() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in found, f"two {doc['kind']} manifests; the tests expect one of each"
            found[doc["kind"]] = doc
    return found


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- Helm values for the official Dagster chart ---------------------------------------------


@pytest.fixture(scope="module")
def chart() -> tuple[dict[str, Any], dict[str, Any]]:
    require(
        (CHART_DIR / "values.yaml").is_file() and (CHART_DIR / "values.schema.json").is_file(),
        f"the Dagster chart's values.yaml and values.schema.json are not in {CHART_DIR} "
        "(set FINOPS_DAGSTER_HELM_DIR to the folder holding them)",
    )
    return load_yaml(CHART_DIR / "values.yaml"), json.loads((CHART_DIR / "values.schema.json").read_text())


@pytest.fixture(scope="module")
def merged_values(chart: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    defaults, _ = chart
    return helm_merge(defaults, load_yaml(HELM_VALUES))


def schema_errors(values: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    # The schema names no draft ($schema); its `$defs` are draft 2020-12's.
    validator_class = validator_for(schema, default=Draft202012Validator)
    validator_class.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator_class(schema).iter_errors(values)
    ]


def test_helm_values_merged_with_the_chart_defaults_validate_against_the_chart_schema(
    chart: tuple[dict[str, Any], dict[str, Any]], merged_values: dict[str, Any]
) -> None:
    _, schema = chart
    assert schema_errors(merged_values, schema) == []


def test_the_chart_schema_refuses_broken_values(
    chart: tuple[dict[str, Any], dict[str, Any]], merged_values: dict[str, Any]
) -> None:
    _, schema = chart
    broken = copy.deepcopy(merged_values)
    broken["runLauncher"]["type"] = "LocalRunLauncher"
    del broken["dagster-user-deployments"]["deployments"][0]["port"]
    broken["computeLogManager"]["config"] = {}
    errors = schema_errors(broken, schema)
    assert any(e.startswith("runLauncher/type") for e in errors), errors
    assert any("'port' is a required property" in e for e in errors), errors
    assert any("s3ComputeLogManager" in e for e in errors), errors


def test_helm_values_run_the_batch_on_kubernetes_against_external_services(
    merged_values: dict[str, Any],
) -> None:
    v = merged_values
    assert v["runLauncher"]["type"] == "K8sRunLauncher"
    # External PostgreSQL, password from an existing Secret.
    assert v["postgresql"]["enabled"] is False and v["generatePostgresqlPasswordSecret"] is False
    assert v["postgresql"]["postgresqlHost"] and v["postgresql"]["postgresqlDatabase"]
    assert v["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    # Compute logs in S3.
    assert v["computeLogManager"]["type"] == "S3ComputeLogManager"
    s3 = v["computeLogManager"]["config"]["s3ComputeLogManager"]
    assert s3["bucket"] and s3["prefix"]
    # Queue with a limit; run monitoring with start and cancel timeouts.
    daemon = v["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["maxConcurrentRuns"] >= 1
    monitoring = daemon["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["startTimeoutSeconds"] > 0 and monitoring["cancelTimeoutSeconds"] > 0
    # The code location: our image, the k8s executor, the FINOPS_* secrets, passed on to runs.
    (location,) = v["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in location["env"]}
    assert env["FINOPS_EXECUTOR"] == "k8s"
    assert int(env["FINOPS_MAX_RUNTIME_SECONDS"]) >= 3600
    assert {"finops-secrets", "finops-s3-credentials"} <= {s["name"] for s in location["envSecrets"]}
    assert location["includeConfigInLaunchedRuns"]["enabled"] is True
    assert location["podSecurityContext"]["runAsUser"] == IMAGE_UID


def test_helm_values_point_the_code_location_at_the_definitions(merged_values: dict[str, Any]) -> None:
    (location,) = merged_values["dagster-user-deployments"]["deployments"]
    args = location["dagsterApiGrpcArgs"]
    module = args[args.index("-m") + 1]
    attribute = args[args.index("-a") + 1]
    workspace = load_yaml(ROOT / "workspace.yaml")["load_from"][0]["python_module"]
    assert (module, attribute) == (workspace["module_name"], workspace["attribute"])
    assert location["port"] == dockerfile_default_command()["port"]
    # Webserver, daemon and code location run the same image.
    images = {
        (i["repository"], str(i["tag"]))
        for i in (
            location["image"],
            merged_values["dagsterWebserver"]["image"],
            merged_values["dagsterDaemon"]["image"],
        )
    }
    assert len(images) == 1, images


# --- The image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def dockerfile_default_command() -> dict[str, Any]:
    (cmd,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "CMD"]
    argv = json.loads(cmd)  # exec form: no shell between the container and the server
    assert argv[:3] == ["dagster", "api", "grpc"], argv
    return {
        "argv": argv,
        "module": argv[argv.index("-m") + 1],
        "attribute": argv[argv.index("-a") + 1],
        "port": int(argv[argv.index("-p") + 1]),
    }


def test_dockerfile_builds_a_non_root_python_image_of_the_project() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    (user,) = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user.split(":")[0] == str(IMAGE_UID)
    copied = [rest.split()[0] for keyword, rest in instructions if keyword == "COPY"]
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    # Every package of the project: the admin API's container runs `finops serve` (finops_cli).
    packages = {"finops_pipeline", "finops_admin_plugin", "finops_cli"}
    assert {"pyproject.toml", "requirements/image.txt", *packages} <= set(copied)
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    # The dependencies from the lock, hashes checked; the project itself adds none.
    assert any("pip install --require-hashes --no-deps -r /tmp/requirements/image.txt" in run for run in runs)
    assert any("pip install --no-deps /tmp/src" in run for run in runs)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)
    assert not {"pyproject.toml", "requirements", *packages} & set(ignored)


def test_dockerfile_code_location_command_names_the_definitions() -> None:
    import importlib

    from dagster import Definitions

    cmd = dockerfile_default_command()
    module = importlib.import_module(cmd["module"])
    assert callable(getattr(module, cmd["attribute"]))
    assert isinstance(module.build_definitions(), Definitions)
    # The options exist in this dagster's `api grpc` command.
    help_text = subprocess.run(
        [sys.executable, "-m", "dagster", "api", "grpc", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    for option in ("--module-name", "--attribute", "--host", "--port"):
        assert option in help_text


def test_the_image_installs_the_ui_files() -> None:
    # A non-editable install (the image's pip install) ships only the declared package data.
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package_root = ROOT / "finops_admin_plugin"
    static = [p for p in (package_root / "ui" / "static").rglob("*") if p.is_file()]
    assert static
    for path in static:
        relative = path.relative_to(package_root).as_posix()
        assert any(Path(relative).match(pattern) for pattern in declared["finops_admin_plugin"]), relative


# --- Kubernetes manifests of the admin API --------------------------------------------------


def run_kubernetes_validate(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    require(tool is not None, "kubernetes-validate is not installed (pip install -e '.[test]')")
    assert tool is not None
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_validate_strict_accepts_every_manifest(version: str) -> None:
    import kubernetes_validate

    version = kubernetes_validate.latest_version() if version == "latest" else version
    files = [p for p in manifest_files() if yaml.safe_load(p.read_text())["kind"] not in CUSTOM_RESOURCES]
    assert {load_yaml(p)["kind"] for p in files} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    result = run_kubernetes_validate("--strict", "-k", version, *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files), result.stdout


def test_kubernetes_validate_strict_refuses_a_misspelt_field(tmp_path: Path) -> None:
    deployment = load_yaml(KUBERNETES / "deployment.yaml")
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    broken = tmp_path / "deployment.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    result = run_kubernetes_validate("--strict", "-k", KUBERNETES_VERSIONS[0], str(broken))
    assert result.returncode != 0
    assert "replica" in result.stdout + result.stderr


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifest_files())


def test_admin_api_deployment() -> None:
    m = manifests_by_kind()
    deployment, service, pdb, config = m["Deployment"], m["Service"], m["PodDisruptionBudget"], m["ConfigMap"]
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == IMAGE_UID
    (container,) = pod["containers"]
    # The command is `finops serve`, with options the command line accepts.
    from finops_cli.main import build_parser, cmd_serve

    command = container["command"]
    assert command[:2] == ["finops", "serve"]
    args = build_parser().parse_args(command[1:])
    assert args.func is cmd_serve and args.host == "0.0.0.0"
    (port,) = container["ports"]
    assert port["containerPort"] == args.port == 7007
    assert container["readinessProbe"]["httpGet"]["path"] == "/finops/admin/healthz"
    assert "livenessProbe" in container
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # Settings from the ConfigMap and the Secrets; never the dev auth mode.
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert config["metadata"]["name"] in sources
    assert {"finops-secrets", "finops-api-secrets"} <= sources
    assert config["data"]["FINOPS_AUTH_MODE"] in ("backstage", "static")
    # Service and PodDisruptionBudget select these pods.
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == 7007
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_admin_api_reads_the_dagster_instance_the_chart_makes(merged_values: dict[str, Any]) -> None:
    pod = manifests_by_kind()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)
    home = merged_values["global"]["dagsterHome"]
    assert env["DAGSTER_HOME"] == home
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    instance_mount = mounts[f"{home}/dagster.yaml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[instance_mount["name"]]["configMap"]["name"] == f"{RELEASE}-instance"
    # The chart's dagster.yaml reads the storage password from DAGSTER_PG_PASSWORD.
    password = env["DAGSTER_PG_PASSWORD"]["secretKeyRef"]
    assert password == {"name": merged_values["global"]["postgresqlSecretName"], "key": "postgresql-password"}
    # Same image as the chart's Dagster processes.
    location = merged_values["dagster-user-deployments"]["deployments"][0]["image"]
    assert container["image"] == f"{location['repository']}:{location['tag']}"


def test_service_monitor_scrapes_the_metrics_endpoint_with_a_token() -> None:
    m = manifests_by_kind()
    for kind, api_version in CUSTOM_RESOURCES.items():
        assert m[kind]["apiVersion"] == api_version
    monitor, service = m["ServiceMonitor"], m["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/finops/admin/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {"name": "finops-metrics-token", "key": "token"}


def test_prometheus_rule_holds_the_same_groups_as_the_rules_file() -> None:
    rule = manifests_by_kind()["PrometheusRule"]
    groups = load_yaml(PROMETHEUS / "finops-alerts.yml")["groups"]
    assert rule["spec"]["groups"] == groups
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    assert set(alerts) == {
        "FinopsLoadStale",
        "FinopsRunStuck",
        "FinopsQualityGateFailed",
        "FinopsRejectRateHigh",
        "FinopsReadModelLag",
        "FinopsDagsterDaemonDown",
        "FinopsSourceSilent",
        "FinopsSourceMonthMissing",
        "FinopsDeliveryUnloaded",
    }
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name


# --- Alert rules ----------------------------------------------------------------------------


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    require(tool is not None, "promtool is missing: `make promtool` installs Debian's prometheus package")
    assert tool is not None
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", "finops-alerts.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    tests = load_yaml(PROMETHEUS / "finops-alerts.test.yml")["tests"]
    # Every alert is seen both firing and quiet.
    for alert in {
        r["alert"] for g in load_yaml(PROMETHEUS / "finops-alerts.yml")["groups"] for r in g["rules"]
    }:
        cases = [c for t in tests for c in t["alert_rule_test"] if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in cases), f"no test where {alert} fires"
        assert any(not c["exp_alerts"] for c in cases), f"no test where {alert} stays quiet"
    result = promtool("test", "rules", "finops-alerts.test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path: Path) -> None:
    rules = (PROMETHEUS / "finops-alerts.yml").read_text()
    changed = rules.replace("> 0.01", "> 0.05")
    assert changed != rules
    (tmp_path / "finops-alerts.yml").write_text(changed)
    shutil.copy(PROMETHEUS / "finops-alerts.test.yml", tmp_path)
    result = promtool("test", "rules", "finops-alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FinopsRejectRateHigh" in result.stdout + result.stderr


# --- The job's executor, chosen by configuration --------------------------------------------


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    from finops_pipeline.settings import get_pipeline_settings

    for name in ("FINOPS_EXECUTOR", "FINOPS_MAX_RUNTIME_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    # Validating a run config resolves the resources' EnvVars (nothing connects).
    monkeypatch.setenv("FINOPS_DATABASE_URL", "postgresql://finops@db.invalid:5432/finops")
    monkeypatch.setenv("FINOPS_LANDING_URI", "s3://finops-landing/focus")
    get_pipeline_settings.cache_clear()
    yield monkeypatch
    get_pipeline_settings.cache_clear()


PLAN_CONFIG = {"plan_batch": {"config": {"periods": ["2026-10"], "domains": ["open", "native"]}}}
K8S_EXECUTION = {
    "config": {
        "max_concurrent": 4,
        "step_k8s_config": {
            "container_config": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
        },
        "per_step_k8s_config": {
            "load_native": {"container_config": {"resources": {"limits": {"memory": "6Gi"}}}}
        },
    }
}
MULTIPROCESS_EXECUTION = {"config": {"multiprocess": {"max_concurrent": 4}}}


def batch_job() -> Any:
    from finops_pipeline.contract import JOB_NAME
    from finops_pipeline.definitions import build_definitions

    return build_definitions().resolve_job_def(JOB_NAME)


def test_k8s_executor_job_accepts_its_executor_config(pipeline_env: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInvalidConfigError, validate_run_config
    from dagster_k8s import k8s_job_executor

    pipeline_env.setenv("FINOPS_EXECUTOR", "k8s")
    job = batch_job()
    assert job.executor_def is k8s_job_executor
    validated = validate_run_config(job, {"ops": PLAN_CONFIG, "execution": K8S_EXECUTION})
    # Dagster files the validated config under the executor's name.
    executor_config = validated["execution"]["k8s"]
    assert executor_config["max_concurrent"] == 4
    native = executor_config["per_step_k8s_config"]["load_native"]["container_config"]
    assert native["resources"]["limits"]["memory"] == "6Gi"
    with pytest.raises(DagsterInvalidConfigError):
        validate_run_config(job, {"ops": PLAN_CONFIG, "execution": MULTIPROCESS_EXECUTION})


def test_multiprocess_executor_stays_the_default(pipeline_env: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInvalidConfigError, multi_or_in_process_executor, validate_run_config

    job = batch_job()
    assert job.executor_def is multi_or_in_process_executor
    validate_run_config(job, {"ops": PLAN_CONFIG, "execution": MULTIPROCESS_EXECUTION})
    with pytest.raises(DagsterInvalidConfigError):
        validate_run_config(job, {"ops": PLAN_CONFIG, "execution": K8S_EXECUTION})


def test_schedule_and_sensor_launch_the_configured_job(pipeline_env: pytest.MonkeyPatch) -> None:
    from dagster_k8s import k8s_job_executor

    from finops_pipeline.contract import JOB_NAME, REPROCESS_SENSOR_NAME, SCHEDULE_NAME
    from finops_pipeline.definitions import build_definitions

    pipeline_env.setenv("FINOPS_EXECUTOR", "k8s")
    repository = build_definitions().get_repository_def()
    assert repository.get_schedule_def(SCHEDULE_NAME).job_name == JOB_NAME
    assert repository.get_sensor_def(REPROCESS_SENSOR_NAME).job_name == JOB_NAME
    assert repository.get_job(JOB_NAME).executor_def is k8s_job_executor


def test_job_carries_the_maximum_runtime_tag(pipeline_env: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance

    from finops_pipeline.executors import MAX_RUNTIME_TAG

    # Schedule, sensor, launchpad and execute_job all give a run the job's run tags; run
    # monitoring reads the tag on the run. A real run (it fails at once: nothing listens on
    # port 1) shows it lands there.
    pipeline_env.setenv("FINOPS_DATABASE_URL", "postgresql://finops@127.0.0.1:1/finops")
    with DagsterInstance.ephemeral() as instance:
        result = batch_job().execute_in_process(
            run_config={"ops": PLAN_CONFIG}, instance=instance, raise_on_error=False
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags[MAX_RUNTIME_TAG] == "14400"
    pipeline_env.setenv("FINOPS_MAX_RUNTIME_SECONDS", "5400")
    from finops_pipeline.settings import get_pipeline_settings

    get_pipeline_settings.cache_clear()
    assert batch_job().run_tags[MAX_RUNTIME_TAG] == "5400"


def test_unknown_executor_is_refused_with_the_choices(pipeline_env: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    pipeline_env.setenv("FINOPS_EXECUTOR", "celery")
    with pytest.raises(ValidationError) as info:
        batch_job()
    message = str(info.value)
    assert "FINOPS_EXECUTOR" in message and "'celery'" in message
    assert re.search(r"multiprocess.*k8s", message)


def test_k8s_executor_without_its_extra_says_what_to_install(pipeline_env: pytest.MonkeyPatch) -> None:
    # An install without the [k8s] extra: dagster_k8s cannot be imported.
    pipeline_env.setitem(sys.modules, "dagster_k8s", None)
    pipeline_env.setenv("FINOPS_EXECUTOR", "k8s")
    with pytest.raises(ValueError, match=r"pip install 'finops-batch-admin\[k8s\]'"):
        batch_job()


def referenced_secrets(merged_values: dict[str, Any]) -> set[str]:
    """Every Secret the chart values and the manifests read."""
    names = {merged_values["global"]["postgresqlSecretName"]}
    for part in ("dagsterWebserver", "dagsterDaemon"):
        names |= {s["name"] for s in merged_values[part].get("envSecrets", [])}
    for location in merged_values["dagster-user-deployments"]["deployments"]:
        names |= {s["name"] for s in location.get("envSecrets", [])}
    m = manifests_by_kind()
    (container,) = m["Deployment"]["spec"]["template"]["spec"]["containers"]
    names |= {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
    names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    names |= {e["authorization"]["credentials"]["name"] for e in m["ServiceMonitor"]["spec"]["endpoints"]}
    return names


def test_docs_walk_through_the_artifacts(merged_values: dict[str, Any]) -> None:
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    for needle in (
        "deploy/helm/values.yaml",
        "kubectl apply -k deploy/kubernetes",
        "FINOPS_EXECUTOR",
        "PgBouncer",
    ):
        assert needle in doc, needle
    secrets = referenced_secrets(merged_values)
    assert len(secrets) >= 5, secrets
    for name in sorted(secrets):
        assert f"create secret generic {name}" in doc, f"docs/kubernetes.md never creates Secret {name}"
