"""``python -m voicebatch.cli``: the ``voicebatch`` command."""

from __future__ import annotations

import sys

from voicebatch.cli.main import main

sys.exit(main())
