"""`voicebatch synth`: texts and scripts spoken by one or more voices, no Airflow
(orchestration, so it lives beside runs.py, not inside the synthesis package).

Everything a call asks for is done in one process: voices are prepared once, the model is
loaded once (and only when something is left to speak), and the chunks of every script go to
the engine together, so they batch across scripts. Every chunk is checked right after the
engine call, while the model is loaded, and failures are re-taken (``voicebatch.verify``).

``--out DIR`` writes ``<name>.wav/.srt/.vtt/.csv`` (and ``<name>.qa.json`` when verified) into
DIR, then ``<name>.manifest.json`` last: it names the output hash, so a run asking for the same
output again finds it and skips it (issue 11). ``--out s3://bucket/prefix`` publishes through the
protocol instead (voice registry, content-addressed outputs, manifest last) and skips what is
published the same way.

``--config`` reads F5-TTS's infer-cli TOML (``synth_request``): each of its keys maps to the
flag of the same meaning, ``[voices.NAME]`` sections become named voices, and keys voicebatch has
no equivalent for are refused by name.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebatch.cli_locations import check_input_path
from voicebatch.errors import InputError, ScriptError
from voicebatch.f5_output import f5_output_to_log
from voicebatch.limits import LIMITS
from voicebatch.outputs import OutputOptions, render_outputs
from voicebatch.pipeline import RunSettings, ScriptPlan, assemble_chunks, plan_scripts, publish_script_outputs
from voicebatch.publish import is_published, point_latest, publish_voice
from voicebatch.scripts import SCRIPT_SUFFIXES, Script, load_script_file, load_scripts
from voicebatch.storage import Storage, is_s3_uri, open_storage
from voicebatch.synthesis.engine import Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.models import ModelStore
from voicebatch.text.lexicon import read_lexicon
from voicebatch.timings import CROSS_FADE_SECONDS
from voicebatch.verify.settings import VerifySettings
from voicebatch.vocab import Vocabulary, load_vocabulary
from voicebatch.voices import PreparedVoice, prepare_voice, voice_source

if TYPE_CHECKING:
    import argparse

log = logging.getLogger(__name__)

DEFAULT_MODEL = "F5TTS_v1_Base"
MAIN_VOICE = "main"  # F5's name for the voice of untagged text (ref_audio / ref_text)
SIDECAR = ".manifest.json"  # <name>.manifest.json: written last in a local --out

# F5-TTS infer-cli TOML keys and what voicebatch does with them.
F5_KEYS = {
    "model",
    "ref_audio",
    "ref_text",
    "gen_text",
    "gen_file",
    "remove_silence",
    "output_dir",
    "output_file",
    "speed",
    "nfe_step",
    "cfg_strength",
    "cross_fade_duration",
    "sway_sampling_coef",
    "device",
    "voices",
}
F5_VOICE_KEYS = {"ref_audio", "ref_text", "speed"}
# F5 keys with no voicebatch equivalent, and what to do instead.
F5_REFUSED = {
    "ckpt_file": "give the model folder with --model (the model store's layout: `voicebatch model resolve`)",
    "vocab_file": "the vocabulary is the model's own vocab.txt",
    "model_cfg": "the architecture is read from the model folder's model.yaml",
    "vocoder_name": "voicebatch uses Vocos",
    "load_vocoder_from_local": "the vocoder comes with the model through the model store",
    "target_rms": "voicebatch raises quiet references to F5's RMS 0.1 and normalises loudness (--loudness)",
    "fix_duration": "durations follow the text (F5's rule); use speed",
    "save_chunk": "verification keeps failing takes next to the report; chunks are not written separately",
    "no_legacy_text": "not needed: file names come from the script ids",
}


@dataclass(frozen=True, slots=True)
class VoiceInput:
    """A voice to prepare: a voice folder (``path``), or F5-style a recording and its text."""

    name: str
    path: Path | None = None  # voice folder, prepared voice, recording beside its transcript, flat stem
    ref_audio: Path | None = None
    ref_text: str | None = None  # with ref_audio; "" = transcribe it (an ASR backend that can)
    speed: float | None = None  # this voice's own speed (F5's [voices.NAME] speed)
    where: str = "--voice"  # where it was given, for error messages


@dataclass(frozen=True, slots=True)
class SynthRequest:
    voices: tuple[VoiceInput, ...]
    out: str
    text: str | None = None
    text_source: str = "--text"
    text_name: str = "synth"  # the output name of --text / gen_text
    scripts: tuple[Path, ...] = ()
    model: str = DEFAULT_MODEL
    params: SynthesisParams = field(default_factory=SynthesisParams)
    options: OutputOptions = field(default_factory=OutputOptions)
    speed: float | None = None  # replaces every script's own speed
    seed: int = 0
    cross_fade: float = CROSS_FADE_SECONDS
    batch_frames: int = 16_384
    device: str | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    force: bool = False
    lexicon: str | None = None  # a pronunciation lexicon's location (file, folder or s3://)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What happened to one script; ``as_json`` is the one shape of a synth row."""

    script: str
    status: str  # written | published | skipped (already there) | held (never passed verification) | failed
    source: str | None = None
    files: tuple[str, ...] = ()
    output_hash: str | None = None
    duration: float | None = None
    needs_review: bool = False
    reason: str | None = None

    def as_json(self) -> dict:
        return {
            "script": self.script,
            "status": self.status,
            "source": self.source,
            "files": list(self.files),
            "output_hash": self.output_hash,
            "duration": self.duration,
            "needs_review": self.needs_review,
            "reason": self.reason,
        }


# --- the request: flags and F5's TOML --------------------------------------------------------------


def synth_request(args: argparse.Namespace, verify: VerifySettings) -> SynthRequest:
    """The flags, over the ``--config`` TOML's keys, over the defaults."""
    config = _read_config(args.config) if args.config else {}
    voices = [_voice_flag(v, i) for i, v in enumerate(args.voice or ())]
    if not voices:
        voices = config.get("voices", [])
    if not voices:
        raise InputError("--voice", "no voice: give --voice (or ref_audio in the --config TOML)")
    text = args.text
    text_source, text_name = "--text", "synth"
    if text is None and not args.script and "text" in config:
        text, text_source = config["text"], config["text_source"]
        text_name = config.get("name", "synth")
    if text is None and not args.script:
        raise InputError("--text", "nothing to speak: give --text or --script (or gen_text / gen_file in the TOML)")
    if text is not None and args.script:
        raise InputError("--script", "give --text or --script, not both")
    out = args.out or config.get("out")
    if not out:
        raise InputError("--out", "no output: give --out (or output_dir in the --config TOML)")
    nfe = _first(args.nfe, config.get("nfe_steps"), 32)
    cfg = _first(args.cfg, config.get("cfg_strength"), 2.0)
    sway = _first(config.get("sway_sampling_coef"), -1.0)
    options = OutputOptions(audio_format=_first(args.format, config.get("format"), "wav"), loudness_lufs=args.loudness)
    return SynthRequest(
        voices=tuple(voices),
        out=str(out),
        text=text,
        text_source=text_source,
        text_name=text_name,
        scripts=tuple(args.script or ()),
        model=_first(args.model, config.get("model"), DEFAULT_MODEL),
        params=SynthesisParams(nfe_steps=int(nfe), cfg_strength=float(cfg), sway_sampling_coef=float(sway)),
        options=options,
        speed=_first(args.speed, config.get("speed")),
        seed=_first(args.seed, 0),
        cross_fade=_first(args.cross_fade, config.get("cross_fade"), CROSS_FADE_SECONDS),
        batch_frames=_first(args.batch_frames, 16_384),
        device=_first(args.device, config.get("device")),
        verify=verify,
        force=args.force,
        lexicon=args.lexicon,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _voice_flag(value: str, position: int) -> VoiceInput:
    """``--voice PATH`` or ``--voice NAME=PATH``."""
    name, sep, path = value.partition("=")
    if sep and name and "/" not in name and not Path(value).exists():
        return VoiceInput(name, Path(path), where=f"--voice {value}")
    return VoiceInput("", Path(value), where=f"--voice {value}")  # named after its folder or file


def _read_config(path: Path) -> dict:
    """F5-TTS infer-cli TOML -> voicebatch's settings. Raises ``InputError`` naming the key."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(path, f"cannot read the config: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid TOML: {e}") from None
    unknown = sorted(set(document) - F5_KEYS)
    for key in unknown:
        if key in F5_REFUSED:
            raise InputError(path, f"key {key!r} has no voicebatch equivalent: {F5_REFUSED[key]}")
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(F5_KEYS))}")
    config: dict = {}
    if model := document.get("model"):
        if model != DEFAULT_MODEL and not Path(str(model)).expanduser().exists() and "://" not in str(model):
            raise InputError(
                path, f"model {model!r}: voicebatch runs {DEFAULT_MODEL} (or a model folder / s3:// prefix)"
            )
        config["model"] = str(model)
    voices = []
    if document.get("ref_audio"):
        voices.append(
            VoiceInput(
                MAIN_VOICE,
                ref_audio=_config_path(path, document["ref_audio"]),
                ref_text=str(document.get("ref_text", "")),
                where=f"{path.name}: ref_audio",
            )
        )
    for name, section in (document.get("voices") or {}).items():
        if not isinstance(section, dict) or "ref_audio" not in section:
            raise InputError(path, f"[voices.{name}] needs ref_audio (and ref_text)")
        if extra := sorted(set(section) - F5_VOICE_KEYS):
            raise InputError(path, f"[voices.{name}]: unknown key(s) {', '.join(map(repr, extra))}")
        speed = section.get("speed")
        if speed is not None and (problem := LIMITS["speed"].problem(float(speed))):
            raise InputError(path, f"[voices.{name}] speed: {problem}")
        voices.append(
            VoiceInput(
                name,
                ref_audio=_config_path(path, section["ref_audio"]),
                ref_text=str(section.get("ref_text", "")),
                speed=None if speed is None else float(speed),
                where=f"{path.name}: [voices.{name}]",
            )
        )
    config["voices"] = voices
    if document.get("gen_file"):  # F5: a gen_file replaces gen_text
        gen_file = _config_path(path, document["gen_file"])
        check_input_path("gen_file", gen_file)  # the deployment's allow-list, where one is set
        try:
            config["text"] = gen_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(gen_file, f"cannot read gen_file: {e}") from None
        config["text_source"] = str(gen_file)
    elif document.get("gen_text"):
        config["text"], config["text_source"] = str(document["gen_text"]), f"{path.name}: gen_text"
    if document.get("output_dir"):
        config["out"] = str(_config_path(path, document["output_dir"], must_exist=False))
    if output_file := document.get("output_file"):
        stem, suffix = Path(output_file).stem, Path(output_file).suffix.lower().lstrip(".")
        config["name"] = stem
        if suffix in ("wav", "flac", "mp3"):
            config["format"] = suffix
    for f5_key, ours in (("nfe_step", "nfe_steps"), ("cfg_strength", "cfg_strength"), ("speed", "speed")):
        if f5_key in document:
            value = document[f5_key]
            if problem := LIMITS[ours].problem(value):
                raise InputError(path, f"{f5_key}: {problem}")
            config[ours] = value
    if "cross_fade_duration" in document:
        if problem := LIMITS["cross_fade"].problem(document["cross_fade_duration"]):
            raise InputError(path, f"cross_fade_duration: {problem}")
        config["cross_fade"] = float(document["cross_fade_duration"])
    for key in ("sway_sampling_coef", "device"):
        if key in document:
            config[key] = document[key]
    if document.get("remove_silence"):
        # F5 cuts silences out of the finished audio; voicebatch trims each chunk's leading and
        # trailing silence (keeping 50 ms) before the cross-fade, which is what remains of that.
        log.info("%s: remove_silence: chunks are trimmed of leading and trailing silence (always on)", path.name)
    return config


def _config_path(config: Path, value: object, *, must_exist: bool = True) -> Path:
    """A path of the TOML as F5 reads it: ``infer/examples/...`` inside the f5-tts package, else
    relative to the working directory, else to the TOML's own folder."""
    text = str(value)
    if text.startswith("infer/examples/"):
        from importlib.resources import files

        return Path(str(files("f5_tts").joinpath(text)))
    candidate = Path(text).expanduser()
    if candidate.is_absolute() or candidate.exists() or not must_exist:
        return candidate if candidate.is_absolute() or candidate.exists() else config.parent / candidate
    return config.parent / candidate


# --- the run ---------------------------------------------------------------------------------------


def synthesize_scripts(
    request: SynthRequest,
    *,
    progress: Callable | None = log_progress,
    engine: Engine | None = None,
    models: ModelStore | None = None,
) -> list[ScriptResult]:
    """Every script of the request, in one process. ``engine``: a loaded engine to use (tests)."""
    vocab = load_vocabulary()
    # A bad lexicon fails first, before any voice is prepared.
    lexicon = read_lexicon(request.lexicon, open_storage) if request.lexicon else None
    voices, speeds = prepare_inputs(request.voices, vocab, request.verify)
    scripts, results = _scripts(request, voices, vocab)
    if not scripts:
        return results
    files = (models or ModelStore()).resolve(request.model)
    if files.random_weights:
        log.warning("model %s has random weights: the audio is noise, not a voice", files.name)
    settings = RunSettings(
        request.params,
        request.options,
        seed=request.seed,
        cross_fade=request.cross_fade,
        verify=request.verify,
        lexicon=lexicon,
    )
    storage = open_storage(request.out)
    publishing = is_s3_uri(request.out)
    if request.speed is not None:
        scripts = [replace(s, speed=request.speed) for s in scripts]
    plans = plan_with_voice_speeds(scripts, voices, speeds, files.checksum, settings)
    pending = []
    for plan in plans:
        done = not request.force and (
            is_published(storage, plan.script.id, plan.output_hash)
            if publishing
            else _written(storage, plan.script.id, plan.output_hash)
        )
        if done:
            results.append(_skipped(storage, plan, publishing))
        else:
            pending.append(plan)
    if not pending:
        log.info("nothing to synthesize: %d script(s) already there", len(plans))
        return results
    if publishing:
        for name in sorted({v for p in pending for v in p.script.voices}):
            publish_voice(storage, voices[name])
    requests = [r for p in pending for r in p.requests]
    log.info(
        "synthesizing %d chunk(s) of %d script(s) (%d already there)",
        len(requests),
        len(pending),
        len(plans) - len(pending),
    )
    references = {name: Reference(name, v.samples, v.text) for name, v in voices.items()}
    started = time.perf_counter()
    with synthesis_engine(files, request.device, engine) as engine:
        audio, verified, verification = speak(engine, references, requests, settings, request.batch_frames, progress)
    elapsed = time.perf_counter() - started
    kept = {r.key: v for r, v in zip(requests, verified, strict=True)} if verified else {}
    samples = {r.key: (kept[r.key].audio.samples if kept else a.samples) for r, a in zip(requests, audio, strict=True)}
    total_frames = sum(a.frames for a in audio) or 1
    frames = {r.key: a.frames for r, a in zip(requests, audio, strict=True)}
    for plan in pending:
        share = elapsed * sum(frames[r.key] for r in plan.requests) / total_frames
        results.append(_finish(storage, publishing, plan, samples, kept, voices, files, settings, verification, share))
    order = {p.script.id: i for i, p in enumerate(plans)}
    return sorted(results, key=lambda r: order.get(r.script, -1))


@contextmanager
def synthesis_engine(files: Any, device: str | None, engine: Engine | None = None) -> Iterator[Engine]:
    """``engine`` when one is given (tests), else an engine on ``device``, or on a leased GPU
    (else the CPU) released on the way out."""
    if engine is not None:
        yield engine
        return
    from voicebatch.synthesis.devices import lease_device

    lease = lease_device() if device is None else None
    try:
        yield Engine(files, device=device or lease.device)
    finally:
        if lease is not None:
            lease.release()


def speak(
    engine: Engine,
    references: dict,
    requests: list,
    settings: RunSettings,
    batch_frames: int,
    progress: Callable | None,
) -> tuple[list, list, dict | None]:
    """One engine call for ``requests`` and their checks: (audio, verified chunks, verification)."""
    with f5_output_to_log(log):  # F5's prints and known-noise warnings: not on stdout
        audio = engine.synthesize(references, requests, settings.params, batch_frames=batch_frames, progress=progress)
        verified, verification = _verify(engine, references, requests, settings, audio, batch_frames, progress)
    return audio, verified, verification


def _finish(
    storage: Storage,
    publishing: bool,
    plan: ScriptPlan,
    samples: Mapping[str, Any],
    kept: Mapping[str, Any],
    voices: Mapping[str, PreparedVoice],
    files: Any,
    settings: RunSettings,
    verification: dict | None,
    seconds: float,
) -> ScriptResult:
    """Write (or publish) one script's outputs from its chunks' audio."""
    from voicebatch.verify.qa import script_qa

    audio = [samples[r.key] for r in plan.requests]
    qa = [kept[r.key].qa_record() for r in plan.requests] if kept else None
    quarantined = [r.key for r in plan.requests if kept and kept[r.key].status == "quarantined"]
    source, sid = plan.script.source, plan.script.id
    if quarantined:
        log.warning("%s: %d of %d chunks never passed verification", sid, len(quarantined), len(plan.requests))
        if not settings.verify.publish_unverified:
            reason = f"{len(quarantined)} chunk(s) never passed verification: held back (--hold-unverified)"
            return ScriptResult(sid, "held", source, output_hash=plan.output_hash, needs_review=True, reason=reason)
    if publishing:
        published = publish_script_outputs(
            storage,
            plan,
            audio,
            voices,
            files.lineage(),
            settings,
            synthesis_seconds=seconds,
            qa=qa,
            verification=verification,
        )
        manifest = json.loads(storage.get_bytes(published.manifest_key))
        return ScriptResult(
            sid,
            "published",
            source,
            tuple(storage.uri_for(k) for k in published.keys),
            plan.output_hash,
            manifest["durations"]["audio_seconds"],
            bool(quarantined),
        )
    assembly = assemble_chunks(audio, plan.chunks, settings, qa)
    rendered = render_outputs(assembly, sid, settings.options, chunks=plan.chunks).files
    if qa is not None:
        document = {"qa": script_qa(qa, settings.verify, verification), "chunks": qa}
        rendered[f"{sid}.qa.json"] = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    written = []
    for name, data in rendered.items():
        storage.put_bytes(name, data)
        written.append(name)
    sidecar = {
        "schema": "voicebatch.synth/1",
        "script_id": sid,
        "output_hash": plan.output_hash,
        "source": source,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": files.lineage(),
        "parameters": settings.hashed(),
        "duration": round(assembly.duration, 3),
        "needs_review": bool(quarantined),
        "files": [
            {"name": n, "size": len(rendered[n]), "sha256": hashlib.sha256(rendered[n]).hexdigest()} for n in written
        ],
    }
    storage.put_bytes(sid + SIDECAR, (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return ScriptResult(
        sid,
        "written",
        source,
        tuple(storage.uri_for(n) for n in [*written, sid + SIDECAR]),
        plan.output_hash,
        round(assembly.duration, 3),
        bool(quarantined),
    )


def _written(storage: Storage, script_id: str, output_hash: str) -> bool:
    """A local --out already holds this output: its sidecar (written last) names the same hash,
    and every file it lists is there with its size."""
    if not storage.exists(script_id + SIDECAR):
        return False
    try:
        sidecar = json.loads(storage.get_bytes(script_id + SIDECAR))
    except (ValueError, OSError):
        return False
    if sidecar.get("output_hash") != output_hash:
        return False
    for entry in sidecar.get("files", []):
        path = Path(storage.uri_for(entry["name"]))
        if not path.is_file() or path.stat().st_size != entry["size"]:
            return False
    return True


def _skipped(storage: Storage, plan: ScriptPlan, publishing: bool) -> ScriptResult:
    sid = plan.script.id
    if publishing:
        log.info("%s is already published under %s: nothing to do", sid, storage.uri_for(f"audio/{sid}/"))
        point_latest(storage, sid, plan.output_hash)  # latest.json names what the latest run asked for
        manifest_key = f"audio/{sid}/{plan.output_hash}/manifest.json"
        manifest = json.loads(storage.get_bytes(manifest_key))
        keys = [o["key"] for o in manifest["outputs"]] + [manifest_key]
        return ScriptResult(
            sid,
            "skipped",
            plan.script.source,
            tuple(storage.uri_for(k) for k in keys),
            plan.output_hash,
            manifest["durations"]["audio_seconds"],
            bool(manifest.get("qa", {}).get("needs_review")),
            "already published",
        )
    sidecar = json.loads(storage.get_bytes(sid + SIDECAR))
    log.info("%s is already written in %s: nothing to do", sid, storage.uri_for(""))
    names = [f["name"] for f in sidecar["files"]] + [sid + SIDECAR]
    return ScriptResult(
        sid,
        "skipped",
        plan.script.source,
        tuple(storage.uri_for(n) for n in names),
        plan.output_hash,
        sidecar.get("duration"),
        bool(sidecar.get("needs_review")),
        "already written",
    )


def _verify(
    engine: Engine,
    references: dict,
    requests: list,
    settings: RunSettings,
    audio: list,
    batch_frames: int,
    progress: Callable | None,
) -> tuple[list, dict | None]:
    """Issue 14's hook, right after the engine call (as in the synthesize task): the
    verified chunks and what verified them (effective mode, models, notes)."""
    if settings.verify.mode == "off":
        return [], None
    from voicebatch.verify import build_verifier
    from voicebatch.verify.takes import verify_chunks

    verifier = build_verifier(settings.verify, device=engine.device)
    verified = verify_chunks(
        engine,
        references,
        requests,
        settings.params,
        audio,
        verifier,
        max_takes=settings.verify.max_takes,
        random_weights=engine.files.random_weights,
        batch_frames=batch_frames,
        progress=progress,
    )
    return verified, {"mode": verifier.mode, "models": verifier.lineage(), "notes": list(verifier.notes)}


# --- voices ----------------------------------------------------------------------------------------


def prepare_inputs(
    inputs: Sequence[VoiceInput], vocab: Vocabulary, verify: VerifySettings, *, recognizer: Any = None
) -> tuple[dict[str, PreparedVoice], dict[str, float]]:
    """(prepared voices by name, the voices' own speeds). The first voice is the default one."""
    voices: dict[str, PreparedVoice] = {}
    speeds: dict[str, float] = {}
    for given in inputs:
        if given.ref_audio is not None:
            voice = _voice_from_reference(given, vocab, verify, recognizer)
        else:
            voice = prepare_voice(voice_source(given.path), vocab=vocab)
            if given.name:
                voice = replace(voice, name=given.name, metadata={**voice.metadata, "voice": given.name})
        if voice.name in voices:
            raise InputError(given.where, f"voice {voice.name!r} given twice: name them (--voice NAME=PATH)")
        for warning in voice.warnings:
            log.warning("voice %s: %s", voice.name, warning)
        window = voice.metadata.get("window", {})
        log.info(
            "voice %s: clip %.2f–%.2f s, text %r", voice.name, window.get("start", 0), window.get("end", 0), voice.text
        )
        voices[voice.name] = voice
        if given.speed is not None:
            speeds[voice.name] = given.speed
    return voices, speeds


def _voice_from_reference(
    given: VoiceInput, vocab: Vocabulary, verify: VerifySettings, recognizer: Any
) -> PreparedVoice:
    """F5's ref_audio + ref_text as a voice. An empty ref_text is transcribed by the ASR backend
    the verification stage is configured with, as timed segments, so the clip is still cut at
    segment boundaries and its text matches its audio."""
    audio = given.ref_audio
    if not audio.is_file():
        raise InputError(given.where, f"ref_audio {audio}: no such file")
    with tempfile.TemporaryDirectory(prefix="voicebatch-ref-") as tmp:
        folder = Path(tmp) / (given.name or audio.stem)
        folder.mkdir()
        (folder / f"reference{audio.suffix.lower()}").symlink_to(audio.resolve())
        if (given.ref_text or "").strip():
            (folder / "reference.txt").write_text(given.ref_text.strip() + "\n", encoding="utf-8")
        else:
            (folder / "reference.srt").write_text(_transcribe(given, verify, recognizer), encoding="utf-8")
        try:
            voice = prepare_voice(voice_source(folder), vocab=vocab)
        except InputError as e:
            raise InputError(given.where, e.message.replace(str(folder), str(audio))) from None
    metadata = {**voice.metadata, "sources": {**voice.metadata["sources"]}}
    metadata["sources"]["audio"] = {**metadata["sources"]["audio"], "name": audio.name}
    return replace(voice, metadata=metadata)


def _transcribe(given: VoiceInput, verify: VerifySettings, recognizer: Any) -> str:
    """An SRT of the recording from the configured ASR backend (one cue per sentence or pause)."""
    if recognizer is None:
        if verify.mode == "off" or verify.backend != "whisper":
            raise InputError(
                given.where,
                "ref_text is empty and no ASR backend that can transcribe is configured (pocketsphinx needs "
                "the text): write ref_text, or use --asr-model whisper:<size> with its weights in the model store",
            )
        from voicebatch.verify import build_verifier

        recognizer = build_verifier(verify).recognizer
        if recognizer is None:
            raise InputError(given.where, f"ref_text is empty and {verify.asr_model} is not available to transcribe it")
    import soundfile as sf
    import soxr

    samples, rate = sf.read(str(given.ref_audio), dtype="float32", always_2d=True)
    audio16k = soxr.resample(samples.mean(axis=1), rate, 16_000)
    heard = recognizer.transcribe(audio16k, text="", language="und")
    if not heard.words:
        raise InputError(given.where, f"ref_text is empty and {heard.backend} heard no words in {given.ref_audio.name}")
    log.info("%s: ref_text transcribed by %s: %r", given.where, heard.backend, heard.text)
    return _srt(_segments(heard.words))


def _segments(words: Sequence[tuple[str, float, float, float]]) -> list[tuple[float, float, str]]:
    """Words grouped into cues: a new cue after sentence punctuation or a pause over 0.4 s."""
    cues: list[list] = []
    for word, start, end, _ in words:
        if not cues or re.search(r"[.!?。！？]$", cues[-1][2]) or start - cues[-1][1] > 0.4:
            cues.append([start, end, word])
        else:
            cues[-1][1] = end
            cues[-1][2] += ("" if re.match(r"^[\u3000-\u9fff]", word) else " ") + word
    return [(a, b, t.strip()) for a, b, t in cues]


def _srt(cues: Sequence[tuple[float, float, str]]) -> str:
    def stamp(seconds: float) -> str:
        millis = round(seconds * 1000)
        return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"

    return "".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, start=1))


# --- scripts ---------------------------------------------------------------------------------------


def _scripts(
    request: SynthRequest, voices: Mapping[str, PreparedVoice], vocab: Vocabulary
) -> tuple[list[Script], list[ScriptResult]]:
    """The scripts to speak, and a failed row for each one that cannot be (the others go on)."""
    known = set(voices)
    default = next(iter(voices))
    if request.text is not None:
        return [_tagged(request.text_name, request.text_source, request.text, default, known, vocab)], []
    scripts: list[Script] = []
    failed: list[ScriptResult] = []
    for path in request.scripts:
        if path.is_dir():
            found, problems = load_scripts(path, known, vocab)
            scripts += found
            failed += [_failed(p) for p in problems]
        elif path.suffix.lower() in SCRIPT_SUFFIXES:
            try:
                scripts += load_script_file(path, known, vocab)
            except ScriptError as e:
                failed.append(_failed(e))
        else:
            raise InputError(path, f"not a script file ({', '.join(SCRIPT_SUFFIXES)}) or a folder of them")
    seen: dict[str, str] = {}
    unique = []
    for script in scripts:
        if script.id in seen:
            failed.append(
                ScriptResult(script.id, "failed", script.source, reason=f"id already used by {seen[script.id]}")
            )
            continue
        seen[script.id] = script.source
        unique.append(script)
    return unique, failed


def _failed(problem: ScriptError) -> ScriptResult:
    from voicebatch.scripts import script_label

    return ScriptResult(script_label(problem), "failed", problem.path, reason=str(problem))


def _tagged(name: str, source: str, text: str, default: str, known: set[str], vocab: Vocabulary) -> Script:
    """A text with [voice] tags (F5's and voicebatch's syntax), untagged text in the default
    voice, checked exactly as a script file is (tags, vocabulary, length)."""
    if not text.strip():
        raise InputError(source, "no text to speak")
    with tempfile.TemporaryDirectory(prefix="voicebatch-text-") as tmp:
        path = Path(tmp) / f"{name}.txt"
        path.write_text(f"---\nvoice: {default}\n---\n{text}", encoding="utf-8")
        try:
            (script,) = load_script_file(path, known, vocab)
        except ScriptError as e:
            where = e.where
            if where and where.startswith("line "):  # the three front-matter lines are ours, not the user's
                where = f"line {int(where.split()[1]) - 3}"
            raise ScriptError(source, e.message, where=where) from None
    return replace(script, source=source)


def plan_with_voice_speeds(
    scripts: Sequence[Script],
    voices: Mapping[str, PreparedVoice],
    speeds: Mapping[str, float],
    model_checksum: str,
    settings: RunSettings,
) -> list[ScriptPlan]:
    """``plan_scripts``, with F5's per-voice speeds: a voice's own speed replaces the script's for
    its parts (a part's speed multiplies the script's, so it is the ratio; a voice tag's own
    ``speed=`` still multiplies it). Part speeds are in the script text, so in the output hash."""

    def with_speeds(script: Script) -> Script:
        parts = tuple(
            replace(p, speed=round(p.speed * speeds[p.voice] / script.speed, 6)) if p.voice in speeds else p
            for p in script.parts
        )
        return replace(script, parts=parts)

    return plan_scripts([with_speeds(s) for s in scripts], voices, model_checksum, settings)
