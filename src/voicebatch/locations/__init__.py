"""Locations: storage (local folders and S3 behind one interface), the names a key may hold, the
deployment's allow-list of what a run may read and write, and the work folder for temporary files.

The bottom layer: every other package reads and writes through it. May import only
``voicebatch.errors`` and ``voicebatch.settings``.
"""
