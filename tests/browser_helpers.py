"""Debian's Chromium, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Chromium as root, offline: no sandbox, and none of its background network traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
