"""F5SynthesizeOperator without a scheduler: constructor, templated fields, lineage, the link."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from airflow_helpers import ROOT, airflow_env

CHECK = r"""
import json, sys
from f5_operator import F5SynthesizeOperator, RunReportLink
from voicebatch.storage import open_storage

out = sys.argv[1]
spec = {"voices": {"nature": "abc123"}, "params": {}, "requests": [],
        "scripts": [{"id": "welcome", "output_hash": "f00d", "source": "/in/scripts/welcome.md"}]}
open_storage(out).put_bytes("_staging/run/batches/0000.json", json.dumps(spec).encode())
op = F5SynthesizeOperator(task_id="synthesize", batch_key="_staging/run/batches/0000.json", output_uri=out,
                          aws_conn_id=None, model="tiny", batch_frames="2048")
lineage = op.get_openlineage_facets_on_complete(None)
print(json.dumps({
    "template_fields": list(op.template_fields),
    "links": [link.name for link in op.operator_extra_links],
    "inputs": [(d.namespace, d.name) for d in lineage.inputs],
    "outputs": [(d.namespace, d.name) for d in lineage.outputs],
    "lease_before_execute": op._lease,
}))
"""


def test_operator_constructor_templates_link_and_lineage(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "airflow")
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "out")], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["template_fields"] == ["batch_key", "output_uri", "aws_conn_id", "model", "batch_frames"]
    assert found["links"] == ["Run report"] and found["lease_before_execute"] is None
    out = str(tmp_path / "out")
    assert found["inputs"] == [["file", f"{out}/voices/nature/abc123"], ["file", "/in/scripts/welcome.md"]]
    assert found["outputs"] == [["file", f"{out}/audio/welcome/f00d"]]
