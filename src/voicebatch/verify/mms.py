"""torchaudio's MMS_FA forced aligner (multilingual), when its weights are in the model store.

The model is torchaudio's wav2vec2 architecture with the parameters in the stored
``config.json`` (MMS_FA's own for the real weights), loaded from the stored ``model.pt``
exactly as ``torchaudio.pipelines.MMS_FA.get_model`` does: auxiliary output rows
dropped, waveform layer-normalised, log-softmax on the output. Text is romanised
(unidecode, standing in for uroman) and kept to the model's letters; a word with no
letter left cannot be placed and says so.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING

from voicebatch.verify.records import Alignment, WordTime

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.verify.store import SpeechModel

log = logging.getLogger(__name__)
NAME = "mms_fa"


class MmsAligner:
    name = NAME

    def __init__(self, model: SpeechModel, *, device: str = "cpu") -> None:
        self.model = model
        self.device = device
        config = json.loads((model.directory / "config.json").read_text())
        self.params = config["params"]
        self.labels: list[str] = config["labels"]
        self.remove_aux_axis = config.get("remove_aux_axis")
        self._net = None
        self._lock = threading.Lock()

    def supports(self, language: str) -> bool:
        return language != "und"

    def lineage(self) -> dict:
        return self.model.lineage()

    def load(self) -> MmsAligner:
        if self._net is None:
            import torch
            from torchaudio.models import wav2vec2_model

            params = {**self.params}
            params["extractor_conv_layer_config"] = [tuple(c) for c in params["extractor_conv_layer_config"]]
            net = wav2vec2_model(**params)
            state = torch.load(self.model.directory / "model.pt", map_location="cpu", weights_only=True)
            if self.remove_aux_axis:
                # As torchaudio does for MMS_FA: fairseq's dictionary rows that the aligner never uses.
                keep = [i for i in range(state["aux.weight"].shape[0]) if i not in set(self.remove_aux_axis)]
                state["aux.weight"] = state["aux.weight"][keep]
                state["aux.bias"] = state["aux.bias"][keep]
            net.load_state_dict(state)
            self._net = net.eval().to(self.device)
        return self

    def emission(self, audio16k: np.ndarray) -> object:
        import torch

        self.load()
        with torch.inference_mode():
            wave = torch.from_numpy(audio16k).float()[None].to(self.device)
            wave = torch.nn.functional.layer_norm(wave, wave.shape)
            logits, _ = self._net(wave)
            return torch.log_softmax(logits, dim=-1)[0].cpu()

    def align(self, audio16k: np.ndarray, tokens: list[str], *, language: str) -> Alignment:
        import torch
        import torchaudio.functional as F
        from unidecode import unidecode

        index = {label: i for i, label in enumerate(self.labels)}
        spelled = [[index[c] for c in unidecode(t).lower() if c in index and index[c] != 0] for t in tokens]
        targets = [i for s in spelled for i in s]
        with self._lock:
            emission = self.emission(audio16k)
        frames = emission.shape[0]
        if not targets or frames < len(targets):
            return Alignment(NAME, tuple(WordTime(t, None, None) for t in tokens))
        labels, scores = F.forced_align(emission[None], torch.tensor([targets], dtype=torch.int32), blank=0)
        spans = F.merge_tokens(labels[0], scores[0].exp())
        seconds_per_frame = audio16k.shape[0] / 16_000 / frames
        out, position = [], 0
        for token, letters in zip(tokens, spelled, strict=True):
            if not letters:
                out.append(WordTime(token, None, None))
                continue
            own = spans[position : position + len(letters)]
            position += len(letters)
            score = sum(s.score * (s.end - s.start) for s in own) / max(1, sum(s.end - s.start for s in own))
            out.append(WordTime(token, own[0].start * seconds_per_frame, own[-1].end * seconds_per_frame, score))
        return Alignment(NAME, tuple(out))
