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


def sign_in(page: object, port: int, password: str) -> None:
    """Sign in to the Airflow UI on ``port`` as ``admin`` (the simple auth manager's form)."""
    page.goto(f"http://127.0.0.1:{port}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    # Sign-in redirects (with the token) back to the UI: navigate only once that is done.
    page.wait_for_url(lambda url: "login" not in url and "/auth/" not in url)
    page.wait_for_load_state("load")
