"""F5SynthesizeOperator without a scheduler: constructor, templated fields, the link, and lineage
from a batch spec that plan actually wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.ingest import ingest_voice, list_voice_names
from voicebatch.run.layout import staging_prefix
from voicebatch.run.plan import plan_run

from airflow_helpers import ROOT, airflow_env
from run_helpers import fake_model, make_voice

CHECK = r"""
import json, sys
from f5_operator import F5SynthesizeOperator, RunReportLink

out, keys = sys.argv[1], json.loads(sys.argv[2])
found = {"inputs": set(), "outputs": set()}
for key in keys:
    op = F5SynthesizeOperator(task_id="synthesize", batch_key=key, output_uri=out, aws_conn_id=None,
                              model="tiny")
    lineage = op.get_openlineage_facets_on_complete(None)
    found["inputs"] |= {(d.namespace, d.name) for d in lineage.inputs}
    found["outputs"] |= {(d.namespace, d.name) for d in lineage.outputs}
print(json.dumps({
    "template_fields": list(op.template_fields),
    "links": [link.name for link in op.operator_extra_links],
    "inputs": sorted(found["inputs"]),
    "outputs": sorted(found["outputs"]),
    "lease_before_execute": op._lease,
}))
"""


def test_operator_constructor_link_and_lineage_from_a_real_plan(tmp_path: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    make_voice(voices, "ben")
    scripts.mkdir()
    (scripts / "welcome.md").write_text("---\nvoice: anna\n---\n# Welcome\n\nGlad you came.")
    (scripts / "lines.jsonl").write_text(
        '{"id": "l1", "voice": "ben", "text": "First line."}\n{"id": "l2", "voice": "anna", "text": "Second."}\n'
    )
    out_dir, staging = str(tmp_path / "out"), staging_prefix("lineage")
    out = open_storage(out_dir)
    config = RunConfig(str(voices), str(scripts), chunks_per_task=2)  # several specs, as a big run has
    for name in list_voice_names(config, out, staging, open_storage):
        ingest_voice(name, config, out, staging, open_storage)
    keys = plan_run(config, out, staging, fake_model(), open_storage, None)["batches"]
    assert len(keys) >= 2

    env = airflow_env(tmp_path / "airflow", VOICEBATCH_ALLOWED_OUTPUTS=out_dir)  # as a deployer sets it
    result = subprocess.run(
        [sys.executable, "-c", CHECK, out_dir, json.dumps(keys)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["template_fields"] == ["batch_key", "output_uri", "aws_conn_id", "model"]
    assert found["links"] == ["Run report"] and found["lease_before_execute"] is None

    # Expected from what plan decided (plan.json), not from the batch specs the operator reads.
    plan = json.loads(out.get_bytes(staging + "plan.json"))
    pending = [e for e in plan["scripts"] if e["status"] == "pending"]
    assert {e["id"] for e in pending} == {"welcome", "l1", "l2"}
    outputs = {("file", f"{out_dir}/audio/{e['id']}/{e['output_hash']}") for e in pending}
    registry = {("file", f"{out_dir}/voices/{v}/{h}") for v, h in plan["voices"].items()}
    script_files = {("file", str(scripts / "welcome.md")), ("file", str(scripts / "lines.jsonl"))}
    assert {tuple(d) for d in found["outputs"]} == outputs
    assert {tuple(d) for d in found["inputs"]} == registry | script_files
