"""Publish: what describes an output and how it is put in place.

The content-addressed output hash and the manifest, publishing a script's files with the
manifest written last, the run report, and the signed job callbacks.

May import every package below ``voicebatch.run``; never ``voicebatch.run`` or ``voicebatch.cli``.
"""
