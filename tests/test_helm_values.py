"""deploy/helm/values.yaml against the official Airflow Helm chart's documented parameters.

No cluster and no helm binary here, so the values are checked offline: every key path they use
must be a parameter of chart 1.22.0 with a matching type, and the settings that make the GPU
worker set work must hold. CHART_1_22_0 lists the parameters used, with their JSON types, as
the chart's values.schema.json declares them (read from the packaged chart airflow-1.22.0.tgz,
sha256 1f7d1dfe3d58e2c54899950aba907a43625a18c8b6fb3c54760c21592129a5b6; "free-form": the chart
accepts any keys below). A worker set (`workers.celery.sets[]`) may override any
`workers.celery` parameter, plus `name`. Adding a key to values.yaml means looking it up in that
schema and adding it here. (`postgresql.enabled`, `data.*SecretName` and `workers.persistence.enabled`
were added from the chart's documented parameters as its repository has them, not re-read from
the 1.22.0 tarball, which cannot be fetched here.)

What the chart does with the values (it renders `workers.extraInitContainers` through `tpl`, so
an init container's image can name the `airflow_image` template) is read from its templates, not
rendered: no helm binary here.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
FREE = "free-form"

CHART_1_22_0: dict[str, tuple[str, ...]] = {
    "airflowVersion": ("string",),
    "executor": ("string",),
    "images": ("object",),
    "images.airflow": ("object",),
    "images.airflow.repository": ("string", "null"),
    "images.airflow.tag": ("string", "null"),
    "images.airflow.pullPolicy": ("string",),
    "postgresql": ("object",),
    "postgresql.enabled": ("boolean",),
    "data": ("object",),
    "data.metadataSecretName": ("string", "null"),
    "data.resultBackendSecretName": ("string", "null"),
    "fernetKeySecretName": ("string", "null"),
    "jwtSecretName": ("string", "null"),
    "apiSecretKeySecretName": ("string", "null"),
    "env": ("array",),
    "extraEnvFrom": ("null", "string"),
    "config": ("object", FREE),
    "dags": ("object",),
    "dags.persistence": ("object",),
    "dags.persistence.enabled": ("boolean",),
    "dags.gitSync": ("object",),
    "dags.gitSync.enabled": ("boolean",),
    "migrateDatabaseJob": ("object",),
    "migrateDatabaseJob.args": ("array", "null"),
    "migrateDatabaseJob.env": ("array",),
    "createUserJob": ("object",),
    "createUserJob.args": ("array", "null"),
    "createUserJob.env": ("array",),
    "workers": ("object",),
    "workers.persistence": ("object",),
    "workers.persistence.enabled": ("boolean",),
    "workers.celery": ("object",),
    "workers.celery.enableDefault": ("boolean",),
    "workers.celery.queue": ("string",),
    "workers.celery.replicas": ("integer", "null"),
    "workers.celery.args": ("array", "null"),
    "workers.celery.env": ("array",),
    "workers.celery.sets": ("array",),
    "workers.celery.nodeSelector": ("object", FREE),
    "workers.celery.tolerations": ("array",),
    "workers.celery.resources": ("object",),
    "workers.celery.resources.limits": ("object", FREE),
    "workers.celery.resources.requests": ("object", FREE),
    "workers.celery.extraInitContainers": ("array",),
    "workers.celery.extraVolumes": ("array",),
    "workers.celery.extraVolumeMounts": ("array",),
}
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "null": type(None)}
# Executors, by the schema's pattern for `executor`: class names ending in Executor, comma-separated.
EXECUTOR_PATTERN = (
    r"^(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor)(,(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor))*$"
)


def key_paths(value: object, path: str = "") -> list[tuple[str, object]]:
    """Every key path in the values, with worker-set keys checked as `workers.celery` ones."""
    found = []
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        found.append((child_path, child))
        if child_path == "workers.celery.sets":
            for item in child:
                found += [(p, v) for p, v in key_paths(item, "workers.celery") if p != "workers.celery.name"]
        elif isinstance(child, dict) and FREE not in CHART_1_22_0.get(child_path, ()):
            found += key_paths(child, child_path)
    return found


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_every_key_is_a_documented_parameter_of_the_chart_with_its_type() -> None:
    for path, value in key_paths(values()):
        assert path in CHART_1_22_0, f"{path} is not a parameter of the Airflow chart 1.22.0"
        types = tuple(JSON_TYPES[t] for t in CHART_1_22_0[path] if t != FREE)
        assert isinstance(value, types) and not (isinstance(value, bool) and bool not in types), (
            f"{path}: {value!r} is not {'/'.join(CHART_1_22_0[path])}"
        )


def test_a_misspelt_key_is_caught() -> None:
    bad = values()
    bad["workers"]["celery"]["sets"][0]["replica"] = 2
    assert [p for p, _ in key_paths(bad) if p not in CHART_1_22_0] == ["workers.celery.replica"]


def test_celery_with_a_gpu_worker_set_on_queue_gpu() -> None:
    import re

    v = values()
    assert v["executor"] == "CeleryExecutor" and re.match(EXECUTOR_PATTERN, v["executor"])
    celery = v["workers"]["celery"]
    assert celery["queue"] == "default" and celery["args"][-1] == "default"
    (gpu,) = celery["sets"]
    assert gpu["queue"] == "gpu" and gpu["args"] == ["bash", "/opt/voicebatch/deploy/worker.sh", "gpu"]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1, "one GPU per pod: concurrency 1 per pod"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    env = {e["name"]: e.get("value") for e in gpu["env"]}
    assert env["VOICEBATCH_REQUIRE_GPU"] == "1"
    # The chart's liveness probe pings celery@<host>: worker.sh must name the node so.
    assert env["VOICEBATCH_CELERY_HOSTNAME"] == "celery@%h"
    assert "VOICEBATCH_CELERY_HOSTNAME" in (ROOT / "deploy" / "worker.sh").read_text()
    # Pool f5_gpu sized at install to the GPU pods; the model warmed from the S3 prefix.
    slots = {e["name"]: e["value"] for e in v["migrateDatabaseJob"]["env"]}["VOICEBATCH_GPU_SLOTS"]
    assert int(slots) == gpu["replicas"] * gpu["resources"]["limits"]["nvidia.com/gpu"]
    assert v["migrateDatabaseJob"]["args"] == ["bash", "/opt/voicebatch/deploy/airflow-init.sh"]
    (warm,) = gpu["extraInitContainers"]
    models_uri = {e["name"]: e["value"] for e in v["env"]}["VOICEBATCH_MODELS_URI"]
    assert warm["command"][:3] == ["voicebatch", "model", "resolve"] and models_uri in warm["command"]
    assert {m["mountPath"] for m in warm["volumeMounts"]} == {m["mountPath"] for m in gpu["extraVolumeMounts"]}


def test_no_known_password_and_shared_secrets_from_one_secret() -> None:
    v = values()
    assert "defaultUser" not in v["createUserJob"], "the chart's default user is admin/admin"
    assert "$VOICEBATCH_ADMIN_PASSWORD" in v["createUserJob"]["args"][-1]
    secret = v["createUserJob"]["env"][0]["valueFrom"]["secretKeyRef"]["name"]
    assert v["fernetKeySecretName"] == v["jwtSecretName"] == v["apiSecretKeySecretName"] == secret
    assert v["config"]["logging"]["remote_logging"] == "True"
    assert v["config"]["logging"]["remote_log_conn_id"] == "voicebatch_s3"


def test_the_warm_model_init_container_runs_the_chart_s_airflow_image() -> None:
    """Not a fixed tag: `--set images.airflow.repository=<registry>/voicebatch` must move it too."""
    v = values()
    (warm,) = v["workers"]["celery"]["sets"][0]["extraInitContainers"]
    assert warm["image"] == '{{ template "airflow_image" . }}'
    assert "voicebatch:" not in VALUES.read_text().split("extraInitContainers")[1]


def test_no_database_login_is_known() -> None:
    """The bundled PostgreSQL (login postgres/postgres) is off; the metadata database and the Celery
    result backend come from Secrets the installer creates (their commands are in the header)."""
    v = values()
    assert v["postgresql"]["enabled"] is False
    assert v["data"]["metadataSecretName"] and v["data"]["resultBackendSecretName"]
    assert "metadataConnection" not in v["data"] and "resultBackendConnection" not in v["data"]
    header = VALUES.read_text().split("airflowVersion:")[0]
    for secret in (v["data"]["metadataSecretName"], v["data"]["resultBackendSecretName"]):
        assert f"create secret generic {secret}" in header and "--from-literal=connection=" in header


def test_worker_persistence_is_decided_off() -> None:
    """Logs on S3 and models in an emptyDir: no StatefulSet with a 100Gi claim per worker pod."""
    v = values()
    assert v["workers"]["persistence"]["enabled"] is False
    assert v["config"]["logging"]["remote_logging"] == "True"
    (gpu,) = v["workers"]["celery"]["sets"]
    (models,) = gpu["extraVolumes"]
    assert "emptyDir" in models


def test_the_gpu_node_selector_is_optional_and_documented() -> None:
    """The GPU limit places the pods; a node selector (a label only some clusters have, such as GPU
    Feature Discovery's nvidia.com/gpu.present) is left to the installer and documented."""
    (gpu,) = values()["workers"]["celery"]["sets"]
    assert not gpu.get("nodeSelector")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    header = VALUES.read_text().split("airflowVersion:")[0]
    assert "nodeSelector" in header and "nvidia.com/gpu.present" in header
