"""The output hash covers what docs/outputs.md lists: change any one input, get a new output (and so
a new synthesis); change nothing, get the same hash in every process."""

from __future__ import annotations

import dataclasses

from voicebatch.inputs.scripts import Script, ScriptPart
from voicebatch.render.outputs import OutputOptions
from voicebatch.run.pipeline import RunSettings, plan_scripts
from voicebatch.synthesis.engine import SynthesisParams

from publish_helpers import model, voice

SCRIPT = Script("intro", "intro.txt", (ScriptPart("anna", "Welcome to the course. Let us begin."),))


def plan(script: Script = SCRIPT, settings: RunSettings | None = None, anna=None, checksum: str | None = None):
    (only,) = plan_scripts([script], {"anna": anna or voice()}, checksum or model().checksum, settings or RunSettings())
    return only


def changed(value: object) -> object:
    """Another valid value of a setting's type (a group of settings: its first one changed)."""
    if dataclasses.is_dataclass(value):
        first = dataclasses.fields(value)[0].name
        return dataclasses.replace(value, **{first: changed(getattr(value, first))})
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1 if value < 0 or isinstance(value, int) else value / 2
    return {"wav": "flac"}.get(value, value)


def test_every_hashed_input_changes_the_output_hash() -> None:
    base = plan()
    variants: dict[str, object] = {}
    for f in dataclasses.fields(SynthesisParams):
        params = dataclasses.replace(SynthesisParams(), **{f.name: changed(getattr(SynthesisParams(), f.name))})
        variants[f"params.{f.name}"] = plan(settings=RunSettings(params=params))
    for f in dataclasses.fields(OutputOptions):
        options = dataclasses.replace(OutputOptions(), **{f.name: changed(getattr(OutputOptions(), f.name))})
        variants[f"options.{f.name}"] = plan(settings=RunSettings(options=options))
    variants["loudness off"] = plan(settings=RunSettings(options=OutputOptions(loudness_lufs=None)))
    variants["seed"] = plan(settings=RunSettings(seed=1))
    variants["cross_fade"] = plan(settings=RunSettings(cross_fade=0.1))
    variants["run speed"] = plan(settings=RunSettings(speed=1.2))
    variants["script speed"] = plan(dataclasses.replace(SCRIPT, speed=0.9))
    variants["script text"] = plan(dataclasses.replace(SCRIPT, parts=(ScriptPart("anna", "Welcome, everyone."),)))
    variants["voice tag"] = plan(
        dataclasses.replace(
            SCRIPT, parts=(ScriptPart("anna", "Welcome to the course."), ScriptPart("anna", "Let us begin."))
        )
    )
    variants["clip hash"] = plan(anna=dataclasses.replace(voice(), clip_hash="another-clip"))
    variants["reference text"] = plan(anna=dataclasses.replace(voice(), text="Hello, I am another voice."))
    variants["model checksum"] = plan(checksum="d" * 64)
    hashes = {name: p.output_hash for name, p in variants.items()}
    same = sorted(name for name, h in hashes.items() if h == base.output_hash)
    assert same == [], f"these changes kept the output hash: {same}"
    assert len(set(hashes.values())) == len(hashes)
    assert plan().output_hash == base.output_hash, "the same inputs, the same hash"


def test_synthesis_inputs_change_every_chunk_key_and_seed_output_options_do_not() -> None:
    base = plan()
    for settings in (RunSettings(seed=1), RunSettings(params=SynthesisParams(nfe_steps=16))):
        other = plan(settings=settings)
        assert all(a.key != b.key and a.seed != b.seed for a, b in zip(base.requests, other.requests, strict=True))
    # The audio of a chunk does not depend on how it is published: its cached chunk is reused.
    mp3 = plan(settings=RunSettings(options=OutputOptions(audio_format="mp3")))
    assert [r.key for r in mp3.requests] == [r.key for r in base.requests]


def test_hashes_are_the_same_as_last_release() -> None:
    """Content addresses must not drift between versions: a re-run, retry or backfill next month
    finds this month's outputs only if the same inputs hash the same. If this fails on purpose
    (the audio or the files change for the same inputs), bump OUTPUT_FORMAT_VERSION and update."""
    import hashlib

    from voicebatch.keys import stable_hash

    canonical = '["κ",{"a":[1.5,null],"b":1}]'  # sorted keys, no spaces, UTF-8 as is
    assert stable_hash("κ", {"b": 1, "a": [1.5, None]}) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    intro = plan()
    assert intro.output_hash == "006ff4326c7e61d356ef2eee2a6be248ebaad3c6d9937be07c39075d2b6b0ea0"
    assert [(r.key, r.seed) for r in intro.requests] == [
        ("0b0a9e23ea30b487306c4ce29ce92b35e3effa0841e1afaf6a8fd90400ec0d77", 1911312865),
        ("d005211e951a3322141e4f0f9914952b51c09a37422f63792c8e2fee7fb77cb0", 1367461819),
    ]
