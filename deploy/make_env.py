"""Write the `.env` that docker compose reads: `.env.example` with every secret filled in.

    python3 deploy/make_env.py [--output .env] [--force] [--set KEY=VALUE ...]

`.env.example` is the template and the documentation of every setting. Each variable listed
in SECRETS below that is empty there gets a fresh random value (Python's `secrets`); every
other line is copied as it is, unless `--set` gives it a value. The file is written with mode
0600 and is git-ignored. Standard library only: it runs on a Docker host without the project's
virtual environment (`make env` calls it).

Generated values use only URL- and JSON-safe characters (letters, digits, `-`, `_`), because
compose pastes them into the database and broker URLs and the S3 connection's JSON; a value
set by hand must keep to the same characters.

An existing file is never overwritten without `--force`: PostgreSQL, Redis and the S3 server
keep the passwords they were first started with in their volumes, so new secrets also need
new volumes (`docker compose down -v`) or a password change inside each service.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import string
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / ".env.example"
SAFE = re.compile(r"^[A-Za-z0-9_\-./:]*$")


def fernet_key() -> str:
    # The format cryptography's Fernet.generate_key() returns: 32 random bytes, url-safe base64.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def password() -> str:
    return secrets.token_urlsafe(32)


def access_key() -> str:
    # AWS-style access key id: 20 upper-case letters and digits.
    return "VB" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18))


SECRETS: dict[str, Callable[[], str]] = {
    "AIRFLOW__CORE__FERNET_KEY": fernet_key,
    "AIRFLOW__API_AUTH__JWT_SECRET": password,
    "AIRFLOW__API__SECRET_KEY": password,
    "VOICEBATCH_ADMIN_PASSWORD": password,
    "POSTGRES_PASSWORD": password,
    "REDIS_PASSWORD": password,
    "S3_ADMIN_ACCESS_KEY": access_key,
    "S3_ADMIN_SECRET_KEY": password,
    "S3_ACCESS_KEY": access_key,
    "S3_SECRET_KEY": password,
}
LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def render(template: str, overrides: Mapping[str, str]) -> str:
    """The template with secrets generated and ``overrides`` applied; every key must be known."""
    seen: set[str] = set()
    lines = []
    for number, line in enumerate(template.splitlines(), 1):
        match = LINE.match(line)
        if match is None:
            lines.append(line)
            continue
        key, value = match["key"], match["value"]
        seen.add(key)
        if key in overrides:
            value = overrides[key]
        elif key in SECRETS and not value:
            value = SECRETS[key]()
        if key in SECRETS and not value:
            raise SystemExit(f"{TEMPLATE.name}:{number}: {key} is empty")
        lines.append(f"{key}={value}")
    if unknown := sorted(set(overrides) - seen):
        raise SystemExit(f"--set: not a setting of {TEMPLATE.name}: {', '.join(unknown)}")
    if missing := sorted(set(SECRETS) - seen):
        raise SystemExit(f"{TEMPLATE.name} lacks the secrets {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / ".env")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--force", action="store_true", help="overwrite an existing file (new secrets)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a value")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        if not SAFE.match(value):
            parser.error(f"--set {key}: use only letters, digits and - _ . / : (compose pastes it into URLs and JSON)")
        overrides[key] = value
    if args.output.exists() and not args.force:
        raise SystemExit(
            f"{args.output} exists; keeping it (its secrets are in use by the volumes it created). "
            "New secrets: --force, then `docker compose down -v` (deletes the database and S3 data)."
        )
    text = render(args.template.read_text(), overrides)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    args.output.chmod(0o600)  # an existing file (--force) keeps its mode otherwise
    print(f"wrote {args.output} ({len(SECRETS)} secrets generated; mode 0600, git-ignored)", file=sys.stderr)


if __name__ == "__main__":
    main()
