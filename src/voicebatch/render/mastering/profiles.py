"""Mastering profiles: the level, the ceiling and the shape of the file each destination wants.

- ``acx``: what ACX (Audible's marketplace) accepts on the first upload: RMS between -23 and
  -18 dBFS (aimed at -20), peaks at or below -3 dBFS (a true-peak limiter at -3.5 dBTP, so the
  MP3's own overshoot stays under), a noise floor at or below -60 dBFS (a room-tone bed near
  -65 dBFS: never digital silence, which ACX rejects), 0.5-1 s of room tone at the head and
  1-5 s at the tail, 44.1 kHz mono, MP3 CBR 192 kbps, at most 120 minutes a file.
- ``podcast``: -16 LUFS integrated, -1 dBTP (the pipeline's default loudness).
- ``ebu-r128``: -23 LUFS integrated, -1 dBTP (EBU R 128 broadcast).
- ``none``: the audio as synthesized.

Loudness is BS.1770 integrated loudness (``voicebatch.render.loudness``, pyloudnorm's filters); RMS
is the plain RMS of the whole file, as ACX measures it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AcxRules:
    """The numbers ACX checks on every file (and ``mastering.acx`` measures)."""

    rms_min_dbfs: float = -23.0
    rms_max_dbfs: float = -18.0
    peak_max_dbfs: float = -3.0
    noise_floor_max_dbfs: float = -60.0
    digital_silence_dbfs: float = -90.0  # a quietest 500 ms below this is dead air, not room tone
    head_min_seconds: float = 0.5
    head_max_seconds: float = 1.0
    tail_min_seconds: float = 1.0
    tail_max_seconds: float = 5.0
    sample_rate: int = 44_100
    channels: int = 1
    min_bit_rate: int = 192_000
    max_seconds: float = 120 * 60.0


ACX = AcxRules()


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    level: str  # "rms" (dBFS, the whole file), "lufs" (integrated) or "none" (no gain)
    target: float  # dBFS RMS or LUFS
    ceiling_dbtp: float | None  # the limiter's true-peak ceiling; None: no limiter
    sample_rate: int | None = None  # None: as synthesized
    head_seconds: float = 0.0  # room tone before the first sentence
    tail_seconds: float = 0.0  # room tone after the last
    room_tone_dbfs: float | None = None  # RMS of the room-tone bed under the whole file; None: none
    max_file_seconds: float | None = None  # a chapter longer than this is split at sentences
    mp3_bit_rate: int = 192_000
    acx: bool = False  # files are checked against ``AcxRules``

    def describe(self) -> str:
        if self.level == "none":
            return "no mastering (the audio as synthesized)"
        unit = "dBFS RMS" if self.level == "rms" else "LUFS"
        text = f"{self.target:g} {unit}, true peak at most {self.ceiling_dbtp:g} dBTP (limiter)"
        if self.room_tone_dbfs is not None:
            text += f", room tone {self.head_seconds:g} s head / {self.tail_seconds:g} s tail"
            text += f" near {self.room_tone_dbfs:g} dBFS"
        if self.sample_rate:
            text += f", {self.sample_rate} Hz mono"
        if self.max_file_seconds:
            text += f", files of at most {self.max_file_seconds / 60:g} min"
        return text


PROFILES: dict[str, Profile] = {
    "acx": Profile(
        "acx",
        "rms",
        -20.0,
        -3.5,
        sample_rate=ACX.sample_rate,
        head_seconds=0.75,
        tail_seconds=2.5,
        room_tone_dbfs=-66.0,
        max_file_seconds=ACX.max_seconds - 60.0,  # room tone and rounding stay under the limit
        mp3_bit_rate=ACX.min_bit_rate,
        acx=True,
    ),
    "podcast": Profile("podcast", "lufs", -16.0, -1.0),
    "ebu-r128": Profile("ebu-r128", "lufs", -23.0, -1.0),
    "none": Profile("none", "none", 0.0, None),
}
PROFILE_NAMES = tuple(PROFILES)


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown mastering profile {name!r}: use one of {', '.join(PROFILE_NAMES)}") from None
