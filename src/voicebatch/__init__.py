"""voicebatch: batch voice cloning with F5-TTS.

The library is plain Python: it never imports Airflow, and importing it loads no heavy
module (torch, f5_tts, librosa, pandas are imported inside the functions that need them),
so DAG files that import it parse fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
