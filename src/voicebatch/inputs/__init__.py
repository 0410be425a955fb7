"""Inputs: what a production team drops into storage, checked and turned into records.

Voices (a recording and its transcript, the reference clip picked from it), transcripts in every
format, scripts (text, Markdown, JSONL, CSV, documents, books, timed subtitle tracks) split into
chunks, and the mirroring of a local or S3 input within the deployment's limits.

May import: ``voicebatch.errors``, ``voicebatch.settings``, ``voicebatch.text``, ``voicebatch.publish``
(storage, names) and, inside functions, ``voicebatch.verify`` (transcribing a recording).
"""
