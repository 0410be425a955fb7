"""The allowed range of every numeric setting, defined once for the DAG's Params (the trigger
form and ``--conf``) and the ``voicebatch`` command's flags (issue 13).

Standard library only: the DAG file imports it at parse time, and the control image, which has
no voicebatch library, gets this one file (Dockerfile) as ``voicebatch_limits``.
"""

from __future__ import annotations

from dataclasses import dataclass


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


# The longest silence a pause Param or a [pause] in a script may ask for (seconds).
MAX_PAUSE_SECONDS = 20.0

# Param / flag name -> its range. The DAG's Params and the CLI's flags of the same meaning read
# these (the CLI's --nfe is nfe_steps, --cfg cfg_strength, --loudness loudness_lufs).
LIMITS: dict[str, Limit] = {
    "nfe_steps": Limit(4, 64, integer=True),
    "cfg_strength": Limit(0.0, 5.0),
    "speed": Limit(0.5, 2.0),
    "seed": Limit(0, None, integer=True),
    "batch_frames": Limit(1000, 1_000_000, integer=True),
    "task_gpu_seconds": Limit(1, 86_400),
    "chunks_per_task": Limit(1, 10_000, integer=True),
    "loudness_lufs": Limit(-40.0, -5.0),
    "max_takes": Limit(1, 20, integer=True),
    "max_cer": Limit(0.0, 1.0),
    "cross_fade": Limit(0.0, 1.0),
    # Silence inserted between sentences, paragraphs and voices (a [pause] in a script has the same cap).
    "sentence_pause": Limit(0.0, MAX_PAUSE_SECONDS),
    "paragraph_pause": Limit(0.0, MAX_PAUSE_SECONDS),
    "speaker_pause": Limit(0.0, MAX_PAUSE_SECONDS),
    # Reference clip bounds (voices check, scripts check, synth): F5-TTS clips references at 12 s.
    "min_seconds": Limit(1.0, 12.0),
    "max_seconds": Limit(1.0, 12.0),
}


def check(name: str, value: float | None) -> str | None:
    """``None`` when ``value`` is allowed for ``name`` (None values are left to the caller)."""
    if value is None:
        return None
    return LIMITS[name].problem(value)
