"""F5-TTS synthesis: model store, engine (true batching), GPU lease, tiny offline model.

torch and f5_tts are imported here (inside functions) and in ``voicebatch.verify``, nowhere else.
May import ``voicebatch.locations``, ``voicebatch.text`` and ``voicebatch.inputs`` (chunks, voices)."""

from __future__ import annotations
