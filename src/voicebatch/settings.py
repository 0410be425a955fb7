"""The settings catalogue: every run setting's name, default, range, help text and form section,
defined once. The DAG's Params (the trigger form and ``--conf``), the ``voicebatch`` command's
flags and the library's dataclasses all read their defaults and ranges from here, so the form,
the CLI and the library cannot disagree.

Standard library only: the DAG file imports it at parse time, and the control image, which has
no voicebatch library, gets this one file (Dockerfile) as ``voicebatch_settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Limit:
    """An inclusive range; ``None``: unbounded on that side."""

    low: float | None
    high: float | None
    integer: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` is not allowed (None when it is)."""
        if self.integer and (isinstance(value, bool) or int(value) != value):
            return f"{value} is not a whole number"
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return f"{_number(value)} is outside {self.span()}"
        return None

    def span(self) -> str:
        """``4–64``, ``≥ 0``."""
        if self.high is None:
            return f"≥ {_number(self.low)}"
        if self.low is None:
            return f"≤ {_number(self.high)}"
        return f"{_number(self.low)}–{_number(self.high)}"

    def schema(self) -> dict:
        """JSON-schema bounds for an Airflow Param. Inside ``allOf`` on purpose: Airflow's form
        hands a top-level ``minimum``/``maximum`` to its number input, which silently clamps
        what was typed (NFE 100 became 64); nested, the bounds are checked by the API when the
        form is submitted, which then shows the message in the form and creates no run."""
        bounds = {k: v for k, v in (("minimum", self.low), ("maximum", self.high)) if v is not None}
        return {"allOf": [bounds]}


def _number(value: float | None) -> str:
    return f"{value:,g}" if isinstance(value, float) else f"{value:,}"


# The trigger form's sections, in the order a producer fills them in.
INPUTS, MODEL, SOUND, CONTROL = "Inputs", "Model", "Sound", "Run control"

# The longest silence a pause setting or a [pause] in a script may ask for (seconds).
MAX_PAUSE_SECONDS = 20.0


@dataclass(frozen=True, slots=True)
class Setting:
    """One run setting. ``kind`` is its JSON-schema type; ``optional`` settings may be left
    empty (null), which means ``default``. ``env`` names the environment variable a deployment
    sets to change the default; ``param`` is False for command-line-only settings."""

    name: str
    default: Any
    title: str
    help: str
    section: str
    kind: str
    limit: Limit | None = None
    optional: bool = True
    choices: Mapping[str, str] = field(default_factory=dict)  # value -> label in the form
    schema: Mapping[str, Any] = field(default_factory=dict)  # more JSON-schema keywords
    env: str | None = None
    param: bool = True

    def description(self) -> str:
        """The help text with the range and what empty means, as the form and ``--help`` show it."""
        text = self.help
        if self.limit is not None:
            text += f" Range {self.limit.span()}."
        if self.optional and self.default is not None and self.kind != "boolean":
            text += f" Empty: {self.default}."
        return text


def _ranged(name: str, default: float, title: str, help: str, section: str, limit: Limit, **kw: Any) -> Setting:
    kind = "integer" if limit.integer else "number"
    return Setting(name, default, title, help, section, kind, limit=limit, **kw)


_LOCATION = {"minLength": 1}

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "voices_uri",
        None,
        "Voices",
        "Voice folders: a local path or s3://bucket/prefix, among the inputs this deployment allows.",
        INPUTS,
        "string",
        optional=False,
        schema=_LOCATION,
        env="VOICEBATCH_VOICES_URI",
    ),
    Setting(
        "scripts_uri",
        None,
        "Scripts",
        "Scripts, among the inputs this deployment allows; a YYYY-MM-DD sub-folder for the run's date is used "
        "when it exists.",
        INPUTS,
        "string",
        optional=False,
        schema=_LOCATION,
        env="VOICEBATCH_SCRIPTS_URI",
    ),
    Setting(
        "output_uri",
        None,
        "Output",
        "Where outputs are published: a local path or s3://bucket/prefix this deployment allows.",
        INPUTS,
        "string",
        optional=False,
        schema=_LOCATION,
        env="VOICEBATCH_OUTPUT_URI",
    ),
    Setting(
        "aws_conn_id",
        "aws_default",
        "AWS connection",
        "Airflow connection for S3 (set endpoint_url in its extra for B2 or MinIO); empty: the worker's own "
        "AWS credentials.",
        INPUTS,
        "string",
        env="VOICEBATCH_AWS_CONN_ID",
    ),
    Setting(
        "voices",
        (),
        "Only these voices",
        "Voice names, one per line; empty: every voice.",
        INPUTS,
        "array",
        schema={"items": {"type": "string"}},
    ),
    Setting(
        "script_files",
        (),
        "Only these script files",
        "File names in the scripts folder, one per line; empty: every script (runs on arrival set it).",
        INPUTS,
        "array",
        schema={"items": {"type": "string"}},
    ),
    Setting(
        "model",
        "F5TTS_v1_Base",
        "Model",
        "A model name, or a model directory or s3:// prefix under this deployment's model roots.",
        MODEL,
        "string",
        optional=False,
        schema={"minLength": 1},
        env="VOICEBATCH_MODEL",
    ),
    _ranged(
        "nfe_steps",
        32,
        "Sampling steps (NFE)",
        "More is slower and cleaner; 7 (or 5, 6, 10, 12, 16) uses F5's EPSS step schedule, ~4.5x faster than 32.",
        MODEL,
        Limit(4, 64, integer=True),
    ),
    _ranged("cfg_strength", 2.0, "Guidance strength (CFG)", "How closely speech follows the text.", MODEL, Limit(0, 5)),
    _ranged("seed", 0, "Seed", "Same seed and inputs give the same audio.", MODEL, Limit(0, None, integer=True)),
    _ranged(
        "speed",
        1.0,
        "Speed",
        "Multiplies each script's own speed; a timed script's cues start from it and are sped up to fit.",
        SOUND,
        Limit(0.5, 2.0),
    ),
    Setting(
        "audio_format",
        "wav",
        "Audio format",
        "WAV PCM16, FLAC or MP3.",
        SOUND,
        "string",
        choices={"wav": "WAV (PCM16)", "flac": "FLAC", "mp3": "MP3"},
    ),
    Setting(
        "loudness_lufs",
        -16.0,
        "Loudness (LUFS)",
        "Integrated loudness target; empty: no normalisation.",
        SOUND,
        "number",
        # Empty is a choice here (no normalisation), not "the default", so no "Empty:" line.
        limit=Limit(-40.0, -5.0),
    ),
    Setting(
        "lexicon_uri",
        None,
        "Pronunciation lexicon",
        "A .csv or .pls (W3C) file, or a folder of them (lexicon.* for all voices, <voice>.* per voice), "
        "local or s3://; empty: none. Applied to what F5 speaks, never to the subtitles.",
        SOUND,
        "string",
        env="VOICEBATCH_LEXICON_URI",
    ),
    _ranged(
        "sentence_pause",
        0.3,
        "Pause between sentences (s)",
        "Silence between sentences; 0 packs sentences as F5 does.",
        SOUND,
        Limit(0.0, MAX_PAUSE_SECONDS),
    ),
    _ranged(
        "paragraph_pause",
        0.8,
        "Pause between paragraphs (s)",
        "Silence at a blank line.",
        SOUND,
        Limit(0.0, MAX_PAUSE_SECONDS),
    ),
    _ranged(
        "speaker_pause",
        0.5,
        "Pause between voices (s)",
        "Silence where the voice changes.",
        SOUND,
        Limit(0.0, MAX_PAUSE_SECONDS),
    ),
    Setting(
        "verify",
        "asr",
        "Verify",
        "off: no checks; signal: silence, level, clipping, duration; asr: also transcribe and compare with the "
        "text (signal when no ASR backend is available, announced in the log).",
        SOUND,
        "string",
        choices={"off": "off", "signal": "signal", "asr": "asr"},
    ),
    _ranged(
        "max_takes",
        3,
        "Takes per chunk",
        "A failing chunk is synthesized again with its next seed, up to this many takes.",
        SOUND,
        Limit(1, 20, integer=True),
    ),
    Setting(
        "max_cer",
        None,
        "Max character error rate",
        "A take passes at or below it; empty: the backend's calibrated threshold (pocketsphinx 0.10, whisper 0.15).",
        SOUND,
        "number",
        limit=Limit(0.0, 1.0),
    ),
    Setting(
        "asr_model",
        "pocketsphinx:en-us",
        "ASR model",
        "pocketsphinx:en-us (offline, English) or whisper:<size> (e.g. whisper:large-v3-turbo, via the model store).",
        SOUND,
        "string",
        schema={"pattern": "^(pocketsphinx:en-us|whisper:.+)$"},
    ),
    Setting("force", False, "Force", "Synthesize again even when the output is published.", CONTROL, "boolean"),
    Setting(
        "strict",
        False,
        "Strict",
        "Fail the run when any voice or script failed or a chunk was quarantined.",
        CONTROL,
        "boolean",
    ),
    Setting(
        "publish_unverified",
        True,
        "Publish unverified",
        "Publish a script whose chunk never passed (marked needs_review); off: hold it back and list it in the report.",
        CONTROL,
        "boolean",
    ),
    Setting(
        "review",
        False,
        "Review quarantined chunks",
        "Wait for a reviewer (Human-in-the-loop task review) on the published scripts' quarantined chunks: "
        "accept, re-take with a new seed or edited text, or drop; accept when nobody answers in time. "
        "Off: publish them as they are.",
        CONTROL,
        "boolean",
    ),
    Setting(
        "callback_url",
        None,
        "Callback URL",
        "When the run ends, green or red, a signed JSON summary is POSTed here (http or https, among the callback "
        "URLs this deployment allows); empty: none.",
        CONTROL,
        "string",
        schema={"pattern": r"^https?://\S+$", "maxLength": 2048},
    ),
    _ranged(
        "batch_frames",
        16_384,
        "Frames per forward pass",
        "GPU batch budget in padded mel frames (16,384 is about 175 s of audio).",
        CONTROL,
        Limit(1000, 1_000_000, integer=True),
    ),
    _ranged(
        "task_gpu_seconds",
        150.0,
        "GPU seconds per synthesize task",
        "Tasks are sized by estimated GPU time so model loading stays under 10 % of each task.",
        CONTROL,
        Limit(1, 86_400),
    ),
    _ranged(
        "chunks_per_task",
        1024,
        "Most chunks per synthesize task",
        "A cap on top of the GPU-time sizing.",
        CONTROL,
        Limit(1, 10_000, integer=True),
    ),
    # Command-line only: the DAG keeps F5's cross-fade and picks reference clips at ingest.
    _ranged("cross_fade", 0.15, "Cross-fade (s)", "Cross-fade between chunks.", SOUND, Limit(0.0, 1.0), param=False),
    # F5-TTS clips references at 12 s.
    _ranged("min_seconds", 3.0, "Shortest reference (s)", "", INPUTS, Limit(1.0, 12.0), param=False),
    _ranged("max_seconds", 11.0, "Longest reference (s)", "", INPUTS, Limit(1.0, 12.0), param=False),
)

CATALOGUE: dict[str, Setting] = {s.name: s for s in SETTINGS}
# Name -> default, for the library's dataclasses and the CLI's flags.
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
# Name -> allowed range, for every numeric setting (the CLI's --nfe is nfe_steps, --cfg
# cfg_strength, --loudness loudness_lufs).
LIMITS: dict[str, Limit] = {s.name: s.limit for s in SETTINGS if s.limit is not None}


def check(name: str, value: float | None) -> str | None:
    """``None`` when ``value`` is allowed for ``name`` (None values are left to the caller)."""
    if value is None:
        return None
    return LIMITS[name].problem(value)
