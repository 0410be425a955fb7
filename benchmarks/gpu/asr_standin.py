"""A GPU speech recogniser's cost without its weights or its runtime: Whisper large-v3-turbo's
architecture (transformers, random weights, fp16) encoding each chunk's 30 s window and decoding
as many tokens as the chunk's text would take, in batches.

Why a stand-in: the project verifies with faster-whisper (CTranslate2), but the GPU machines lent
to this project carry CUDA 13 libraries only, and CTranslate2 4.8's wheels need CUDA 12's cuBLAS
(and weigh 42 MB, more than the device tool carries beside the other wheels). transformers is on
those machines. Its greedy decoding is slower than CTranslate2's, so the overhead measured with
this stand-in is an upper bound for faster-whisper on the same GPU. Random weights emit random
tokens, so the decode length is fixed from the text (1.3 tokens a word, plus Whisper's 4 prompt
tokens) instead of waiting for an end-of-text token.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

TURBO = {  # openai/whisper-large-v3-turbo
    "d_model": 1280,
    "encoder_layers": 32,
    "decoder_layers": 4,
    "encoder_attention_heads": 20,
    "decoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "decoder_ffn_dim": 5120,
}
TINY = {  # the dry run's
    "d_model": 64,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
}
START = 50258  # <|startoftranscript|>


class WhisperStandIn:
    def __init__(self, device: str, *, tiny: bool = False, batch: int = 16) -> None:
        import torch
        from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

        self.device, self.batch = device, batch
        self.dtype = torch.float16 if device.startswith("cuda") else torch.float32
        config = WhisperConfig(vocab_size=51866, num_mel_bins=128, **(TINY if tiny else TURBO))
        torch.manual_seed(0)
        with torch.device(device):
            self.model = WhisperForConditionalGeneration(config).to(self.dtype).eval()
        self.features = WhisperFeatureExtractor(feature_size=128)
        # Its own CUDA stream, as CTranslate2 has: beside synthesis, not queued behind it.
        self.stream = torch.cuda.Stream(device) if device.startswith("cuda") else None
        self.name = "whisper-large-v3-turbo architecture (random weights, transformers)" if not tiny else "tiny"

    def transcribe(self, samples: Sequence, texts: Sequence[str], rate: int = 24_000) -> list[int]:
        """Encode and greedily decode every chunk, ``batch`` at a time; returns token counts."""
        import soxr
        import torch

        audio16k = [soxr.resample(s, rate, 16_000) for s in samples]
        counts = []
        for start in range(0, len(audio16k), self.batch):
            part = audio16k[start : start + self.batch]
            words = max(len(t.split()) for t in texts[start : start + self.batch])
            tokens = 4 + math.ceil(1.3 * words)
            feats = self.features(part, sampling_rate=16_000, return_tensors="pt")["input_features"]
            with torch.inference_mode(), torch.cuda.stream(self.stream) if self.stream else contextlib.nullcontext():
                encoded = self.model.model.encoder(feats.to(self.device, self.dtype)).last_hidden_state
                ids = torch.full((len(part), 1), START, device=self.device)
                past = None
                for _ in range(tokens):
                    out = self.model.model.decoder(
                        input_ids=ids[:, -1:], encoder_hidden_states=encoded, past_key_values=past, use_cache=True
                    )
                    past = out.past_key_values
                    ids = torch.cat(
                        [ids, self.model.proj_out(out.last_hidden_state)[:, -1].argmax(-1, keepdim=True)], 1
                    )
            if self.stream is not None:
                self.stream.synchronize()
            counts += [tokens] * len(part)
        return counts
