"""The ``voicebatch`` command: ``voices``, ``scripts``, ``transcripts``, ``text``, ``model``, ``synth``,
``check``. Results go to stdout, logs and errors to stderr, one line per bad input.

May import every package; nothing imports it.
"""
