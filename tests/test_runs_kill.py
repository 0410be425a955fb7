"""A synthesize task killed mid-spec loses only the batch it was running (and, while that one
synthesizes, the check of the batch before it if it had not ended): the retry speaks the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.ingest import ingest_voice, list_voice_names
from voicebatch.run.layout import staging_prefix
from voicebatch.run.pipeline import RunSettings
from voicebatch.run.plan import plan_run
from voicebatch.synthesis.engine import SynthesisParams
from voicebatch.synthesis.models import load_model_files

from run_helpers import make_voice

# The synthesize stage as a task process runs it, with the engine's calls logged (one line per
# chunk it is asked to speak). In "block" mode it stops inside its second engine call, as a
# task killed while the GPU works on a batch; the test then kills it.
TASK = r"""
import sys
from pathlib import Path
from voicebatch.run.synthesize import synthesize_batch
from voicebatch.locations.storage import open_storage
from voicebatch.synthesis.engine import Engine
from voicebatch.synthesis.models import load_model_files

out_uri, spec_key, staging, model_dir, mode, log_path = sys.argv[1:]
engine = Engine(load_model_files(Path(model_dir)), device="cpu")
speak, calls = engine.synthesize, []

def logged(references, chunks, *args, **kwargs):
    calls.append(len(chunks))
    if mode == "block" and len(calls) == 2:
        print("IN-SECOND-BATCH", flush=True)
        sys.stdin.read()  # held here until killed
    with open(log_path, "a") as log:
        log.writelines(c.key + "\n" for c in chunks)
    return speak(references, chunks, *args, **kwargs)

engine.synthesize = logged
print(synthesize_batch(spec_key, open_storage(out_uri), staging, engine), flush=True)
"""

BATCH_FRAMES = 1000  # the Param's minimum: one chunk per synthesis batch with this voice


def staged_keys(out, staging: str) -> set[str]:
    return {k.rsplit("/", 1)[1][: -len(".json")] for k in out.list(f"{staging}chunks/") if k.endswith(".json")}


def task(args: list[str], mode: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TASK, *args, mode, str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_a_killed_synthesize_try_is_retried_on_the_missing_chunks_only(tmp_path: Path, tiny_model_dir: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    for n in range(4):  # four short chunks: one synthesis batch each within the frame budget
        (scripts / f"line{n}.txt").write_text(f"Good morning, number {n}.")
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("kill")
    fast = RunSettings(params=SynthesisParams(nfe_steps=8))
    config = RunConfig(str(voices), str(scripts), settings=fast, batch_frames=BATCH_FRAMES)
    list_voice_names(config, out, staging, open_storage)
    ingest_voice("anna", config, out, staging, open_storage)
    (spec_key,) = plan_run(config, out, staging, load_model_files(tiny_model_dir), open_storage, None)["batches"]
    keys = [r["key"] for r in json.loads(out.get_bytes(spec_key))["requests"]]
    assert len(keys) >= 3, "the spec needs several synthesis batches"
    args = [str(tmp_path / "out"), spec_key, staging, str(tiny_model_dir)]

    first = task(args, "block", tmp_path / "first.log")
    try:
        said = []  # F5 prints to stdout too: read up to the marker (or the end, if it never comes)
        while (line := first.stdout.readline()) and line.strip() != "IN-SECOND-BATCH":
            said.append(line.strip())
        reached = bool(line)
        # The first batch is checked beside the second's synthesis (verify/overlap.py) and staged
        # as soon as its check ends: wait for that, as a task killed later in its batch would.
        deadline = time.monotonic() + 300
        while reached and first.poll() is None and time.monotonic() < deadline and not staged_keys(out, staging):
            time.sleep(0.1)  # readiness poll of the task's own progress, not a timing assumption
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert reached, f"{said}\n{first.stderr.read()[-3000:]}"
    assert first.returncode == -signal.SIGKILL
    staged = staged_keys(out, staging)
    asked_first = (tmp_path / "first.log").read_text().split()
    assert len(asked_first) == 1 and staged == set(asked_first), "the finished batch was staged before the kill"
    assert out.exists(f"{staging}chunks/{asked_first[0]}.wav")

    retry = task(args, "finish", tmp_path / "retry.log")
    stdout, stderr = retry.communicate(timeout=300)
    assert retry.returncode == 0, stderr[-3000:]
    asked_retry = (tmp_path / "retry.log").read_text().split()
    assert sorted(asked_retry) == sorted(set(keys) - staged), "the retry speaks only what is missing"
    done = staged_keys(out, staging)
    assert done == set(keys)
    assert f"'reused': {len(staged)}" in stdout and f"'chunks': {len(keys) - len(staged)}" in stdout
