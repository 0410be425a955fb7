"""Render: chunk audio to the files a script publishes.

Joining chunks with pauses (in memory or streamed to a file for books), loudness and mastering
profiles, subtitles (SRT, WebVTT) built from the measured sentence and word times, the timing
table (CSV) and the audio files (WAV, FLAC, MP3, M4B).

May import: ``voicebatch.errors``, ``voicebatch.settings``, ``voicebatch.text``, ``voicebatch.inputs``
(records) and ``voicebatch.publish`` (storage); never ``voicebatch.run`` or ``voicebatch.cli``.
"""
