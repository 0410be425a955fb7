"""F5-TTS synthesis: model store, engine (true batching), GPU lease, tiny offline model."""

from __future__ import annotations
