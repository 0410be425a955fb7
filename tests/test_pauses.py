"""Pauses: markup, chunk boundaries, and silence of the configured length in the
assembled audio, measured on the samples, with cues shifted exactly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voicebatch.inputs.scripts import Script, ScriptPart, chunk_script, load_scripts
from voicebatch.render.join import assemble
from voicebatch.text.markup import MarkupError, Pause, PauseRules, Speed, parse_markup

RATE = 24_000
REFS = {"anna": ("Hello, I am a test voice.", 4.0), "ben": ("Hello, I am a test voice.", 4.0)}


def speech(seconds: float, lead: float = 0.0, trail: float = 0.0, freq: float = 220.0) -> np.ndarray:
    """A loud tone (never zero inside: it starts at its peak) with silent margins."""
    t = np.arange(round(seconds * RATE)) / RATE
    body = (0.3 * np.cos(2 * np.pi * freq * t) + 0.05).astype(np.float32)
    return np.concatenate([np.zeros(round(lead * RATE), np.float32), body, np.zeros(round(trail * RATE), np.float32)])


def silences(samples: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of every run of exact zeros, measured independently of the assembler."""
    quiet = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_markup_parses_pauses_breaks_and_speed() -> None:
    tokens = parse_markup(
        "A [pause 1.5s] b [pause 800ms] c <break time=\"250ms\"/> d <break strength='strong' /> e [speed 0.9] f [pause]"
    )
    assert [t for t in tokens if not isinstance(t, str)] == [
        Pause(1.5),
        Pause(0.8),
        Pause(0.25),
        Pause(strength="strong"),
        Speed(0.9),
        Pause(strength="medium"),
    ]
    rules = PauseRules(sentence=0.3, paragraph=0.8)
    assert Pause(strength="strong").resolve(rules) == 0.8 and Pause(strength="x-weak").resolve(rules) == 0.1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Wait [pause soon] here.", "pause length 'soon' must be seconds or milliseconds"),
        ("Wait [pause 30s] here.", "longer than 20 s"),
        ('Wait <break time="2"/> here.', "must be seconds or milliseconds"),
        ('Wait <break strength="huge"/> here.', "strength must be one of"),
        ('Wait <break size="1s"/> here.', "unknown attribute size"),
        ("Go [speed 3] now.", "speed must be a number from 0.5 to 2.0"),
    ],
)
def test_bad_markup_is_rejected_with_its_line(tmp_path, text: str, says: str) -> None:
    with pytest.raises(MarkupError) as error:
        parse_markup(text)
    assert says in str(error.value)
    (tmp_path / "bad.txt").write_text(f"---\nvoice: anna\n---\nFirst line.\n{text}\n")
    _, problems = load_scripts(tmp_path, {"anna"})
    assert (
        len(problems) == 1
        and str(problems[0]).startswith(f"{tmp_path / 'bad.txt'}: line 5: ")
        and says in str(problems[0])
    )


def test_chunks_never_span_a_paragraph_pause_or_speed_change_and_carry_their_pauses() -> None:
    text = 'One. Two [pause 1.5s] still two.\n\nThree <break strength="x-strong"/> four. [speed 0.8] Five.'
    script = Script(
        "s", "s.txt", (ScriptPart("anna", text), ScriptPart("ben", "Six."), ScriptPart("ben", "Seven.")), 1.0
    )
    chunks = chunk_script(script, REFS, pauses=PauseRules(0.3, 0.8, 0.5))
    assert [c.sentences for c in chunks] == [
        ("One.",),
        ("Two",),
        ("still two.",),
        ("Three",),
        ("four.",),
        ("Five.",),
        ("Six.",),
        ("Seven.",),
    ]
    assert [c.pause_after for c in chunks] == [0.3, 1.5, 0.8, 1.2, 0.3, 0.5, 0.3, 0.0]
    assert [c.speed for c in chunks] == [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 1.0, 1.0]
    assert [c.sentence_ids for c in chunks] == [(0,), (1,), (1,), (2,), (2,), (3,), (4,), (5,)]
    # Without a sentence pause, sentences pack as F5 does, but never across a paragraph.
    packed = chunk_script(
        Script("p", "p.txt", (ScriptPart("anna", "One. Two.\n\nThree."),)), REFS, pauses=PauseRules(0, 0.8, 0.5)
    )
    assert [c.sentences for c in packed] == [("One.", "Two."), ("Three.",)] and packed[0].pause_after == 0.8


def test_a_part_speed_multiplies_the_script_speed() -> None:
    (part,) = [ScriptPart("anna", "Slow words.", 0.8)]
    chunks = chunk_script(Script("s", "s.txt", (part,), 1.25), REFS)
    assert chunks[0].speed == 1.0


def test_voice_tag_attributes_are_parsed(tmp_path) -> None:
    (tmp_path / "t.txt").write_text("[anna speed=0.8] Slow. [ben lang=de] Schnell 3,5. [anna] Normal.")
    (script,), problems = load_scripts(tmp_path, {"anna", "ben"})
    assert problems == []
    assert [(p.voice, p.speed, p.lang) for p in script.parts] == [
        ("anna", 0.8, None),
        ("ben", 1.0, "de"),
        ("anna", 1.0, None),
    ]
    chunks = chunk_script(script, REFS)
    assert chunks[1].text == "Schnell drei Komma fünf." and chunks[0].speed == 0.8


def test_silence_of_the_configured_length_at_sentence_paragraph_and_markup_positions() -> None:
    text = "First one. Second one.\n\nThird [pause 1.5s] fourth."
    script = Script("s", "s.txt", (ScriptPart("anna", text), ScriptPart("ben", "Fifth.")), 1.0)
    rules = PauseRules(sentence=0.3, paragraph=0.8, speaker=0.5)
    chunks = chunk_script(script, REFS, pauses=rules)
    assert [c.pause_after for c in chunks] == [0.3, 0.8, 1.5, 0.5, 0.0]
    # Each chunk: speech with 0.2-0.4 s of silence around it (trimmed to 50 ms margins).
    audio = [speech(1.0 + 0.1 * k, lead=0.2 + 0.05 * k, trail=0.4 - 0.05 * k, freq=200 + 30 * k) for k in range(5)]
    out = assemble(audio, [c.sentences for c in chunks], pauses=[c.pause_after for c in chunks])
    gaps = [length for start, length in silences(out.samples) if start > 0 and start + length < out.samples.shape[0]]
    assert gaps == [round(p * RATE) for p in (0.3, 0.8, 1.5, 0.5)], "silence between speeches, to the sample"
    # Cues are shifted exactly: each starts where its chunk's audio starts in the joined signal.
    lengths = [round((1.0 + 0.1 * k) * RATE) + 2 * round(0.05 * RATE) for k in range(5)]
    expected, position = [], 0
    for k, length in enumerate(lengths):
        expected.append((position, position + length))
        position += length + (round(chunks[k].pause_after * RATE) - 2 * round(0.05 * RATE))
    assert [(c.start_sample, c.end_sample) for c in out.sentences] == [
        *expected[:4],
        (expected[4][0], out.samples.shape[0]),
    ]
    assert out.samples.shape[0] == expected[-1][1]


def test_a_pause_shorter_than_the_kept_margins_is_still_exact() -> None:
    out = assemble([speech(1.0, 0.3, 0.3), speech(1.0, 0.3, 0.3)], [("A.",), ("B.",)], pauses=[0.04])
    (gap,) = [n for s, n in silences(out.samples) if s > 0 and s + n < out.samples.shape[0]]
    assert gap == round(0.04 * RATE)


def test_without_pauses_chunks_cross_fade_as_before() -> None:
    chunks = [speech(1.0, 0.1, 0.1), speech(1.0, 0.1, 0.1)]
    faded = assemble(chunks, [("A.",), ("B.",)], pauses=[0.0])
    plain = assemble(chunks, [("A.",), ("B.",)])
    np.testing.assert_array_equal(faded.samples, plain.samples)
    assert all(a.end_sample == b.start_sample for a, b in itertools.pairwise(faded.sentences))


def test_speed_per_part_and_pauses_are_recorded_in_the_manifest(tmp_path) -> None:
    import json

    from voicebatch.locations.storage import open_storage
    from voicebatch.run.pipeline import RunSettings, plan_scripts, publish_script_outputs

    from publish_helpers import chunk_audio, model, voice

    text = "Normal pace. [speed 0.8] Slower now. [pause 2s] Still slow."
    script = Script("paced", "paced.txt", (ScriptPart("anna", text, 0.9),), 1.0)
    storage = open_storage(str(tmp_path))
    (plan,) = plan_scripts([script], {"anna": voice()}, model().checksum, RunSettings(), storage)
    publish_script_outputs(
        storage, plan, chunk_audio(len(plan.requests)), {"anna": voice()}, model().lineage(), RunSettings()
    )
    (key,) = [k for k in storage.list("audio/paced/") if k.endswith("manifest.json")]
    manifest = json.loads(storage.get_bytes(key))
    assert [(c["text"], c["speed"], c["pause_after"]) for c in manifest["chunks"]] == [
        ("Normal pace.", 0.9, 0.3),
        ("Slower now.", 0.72, 2.0),
        ("Still slow.", 0.72, 0.0),
    ]
    assert manifest["inputs"]["script"]["parts"] == [{"voice": "anna", "speed": 0.9, "lang": None}]
    assert manifest["parameters"]["pauses"] == {"sentence": 0.3, "paragraph": 0.8, "speaker": 0.5}
    # The published audio holds the 2 s pause: the third sentence starts 2 s after the second ends.
    table = storage.get_bytes(key.replace("manifest.json", "paced.csv")).decode().splitlines()
    ends = [line.split(",") for line in table[1:4]]
    assert round(float(ends[2][5]) - float(ends[1][6]), 3) == 2.0
