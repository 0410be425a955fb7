"""The model of the local paths, `make demo` and `make airflow`.

On a laptop without Hugging Face access the default model (F5TTS_v1_Base, multi-GB weights)
cannot be had. The local paths are for trying the pipeline, so there they fall back to the
tiny randomly initialised model, announced loudly: here at start, in the task logs (plan and
synthesize say RANDOM WEIGHTS) and in the report ("random weights: noise, not a voice"). The
decision is made once, when the command starts, and shows in the trigger form (the Model
Param's default is the tiny model's folder). Deployments (docker compose, Helm, your own
Airflow) never fall back: an unavailable model fails the run's plan task at once, once, with
one line in the log and the report.

``$VOICEBATCH_MODEL`` always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "F5TTS_v1_Base"


def banner(text: str) -> str:
    line = "!" * 78
    return f"\n{line}\n{text}\n{line}\n"


def real_model_reachable() -> tuple[bool, str]:
    """(whether F5TTS_v1_Base can be had without downloading it now, and why not)."""
    from voicebatch.locations.workdir import default_cache_dir
    from voicebatch.synthesis.model_store import hub_reachable

    if (default_cache_dir() / DEFAULT_MODEL / "manifest.json").is_file():
        return True, ""
    if os.environ.get("VOICEBATCH_MODELS_URI"):
        return True, ""  # the S3 models prefix: the first task fetches it from there
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, f"{DEFAULT_MODEL} is not cached in {default_cache_dir()} and HF_HUB_OFFLINE=1"
    if not hub_reachable():
        return False, f"{DEFAULT_MODEL} is not cached in {default_cache_dir()} and the Hugging Face hub is unreachable"
    return True, ""


def tiny_model(home: Path) -> Path:
    from voicebatch.synthesis.tiny import build_tiny_model

    tiny = home / "models" / "tiny-random"
    if not (tiny / "manifest.json").exists():
        build_tiny_model(tiny)
    return tiny


def announce_tiny(reason: str, what: str) -> None:
    print(
        banner(
            f"OFFLINE: {reason}.\n"
            f"{what} uses the TINY RANDOMLY INITIALISED model instead: random weights, so the\n"
            "audio is NOISE, NOT A VOICE. The pipeline, files, subtitles and report are real.\n"
            "Set VOICEBATCH_MODEL (a model name, folder or s3:// prefix) to choose one."
        ),
        flush=True,
    )


def local_model(home: Path) -> tuple[str, bool]:
    """(model spec for `make airflow`, random weights?): the default when it can be had, else the tiny model."""
    if spec := os.environ.get("VOICEBATCH_MODEL"):
        return spec, False
    ok, reason = real_model_reachable()
    if ok:
        return DEFAULT_MODEL, False
    announce_tiny(reason, "Every run of this Airflow")
    return str(tiny_model(home)), True
