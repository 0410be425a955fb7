"""The docs site builds without a warning, and what a user looks up has its place in it.

`mkdocs build --strict` fails on a broken link or anchor and on a page left out of the nav. The
other tests read what to look for from the code, not from the docs: the DAG's Params and tasks
as Airflow parses them, the connection ids the deployment and the plugins use, the audio formats
the Params allow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airflow_helpers import ROOT, airflow_env

DOCS = ROOT / "docs"
README = ROOT / "README.md"

DAG_FACTS = r"""
import json, sys
from airflow.models.dagbag import DagBag
dag = DagBag(sys.argv[1]).dags["voice_batch"]
params = {name: dag.params.get_param(name).schema for name in dag.params.keys()}
defaults = {name: dag.params.get_param(name).value for name in dag.params.keys()}
print(json.dumps({"params": params, "defaults": defaults, "tasks": sorted(dag.task_ids)}))
"""


@pytest.fixture(scope="module")
def dag_facts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    env = airflow_env(tmp_path_factory.mktemp("airflow"))
    result = subprocess.run(
        [sys.executable, "-c", DAG_FACTS, str(ROOT / "dags")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def table_names(text: str) -> set[str]:
    """The backticked names in the first column of a page's tables (a cell may name several)."""
    cells = re.findall(r"^\s*\| ((?:`[^`|]+`(?:, )?)+) \|", text, flags=re.MULTILINE)
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def test_mkdocs_build_strict_has_no_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # Material's banner about MkDocs 2.0 is not a build warning; keep the log to the build's own lines.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert not [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))], log[-5000:]
    # Every page of the nav was rendered, and the Mermaid fences reached the page as diagrams.
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.Loader)  # !!python/name tags
    for name in nav_pages(config["nav"]):
        built = site / (name[: -len("index.md")] if name.endswith("index.md") else name[:-3] + "/") / "index.html"
        assert built.is_file(), name
    assert '<pre class="mermaid"><code>flowchart LR' in (site / "architecture" / "index.html").read_text()


def test_every_docs_page_is_in_the_nav() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.Loader)
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav_pages(config["nav"])) == on_disk


def test_every_param_has_its_row_and_its_form_section(dag_facts: dict) -> None:
    params = set(dag_facts["params"])
    text = page("params.md")
    assert table_names(text) == params, "the Params table lists exactly the DAG's Params"
    sections = text[text.index("The form groups the Params") :].split("Only `voices_uri`")[0]
    assert set(re.findall(r"`([a-z_]+)`", sections)) == params, "each Param named once in its form section"


def test_every_task_of_the_dag_is_described_and_drawn(dag_facts: dict) -> None:
    tasks = set(dag_facts["tasks"])
    assert table_names(page("pipeline.md")) >= tasks
    for text in (page("pipeline.md"), README.read_text()):
        graph = re.search(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)
        assert graph, "a Mermaid picture of the DAG"
        drawn = set(re.findall(r"\b([a-z_]+)\b", re.sub(r'\[".*?"\]', "", graph.group(1)))) - {"flowchart", "lr"}
        assert drawn == tasks, drawn ^ tasks


def test_every_connection_the_deployment_uses_is_documented(dag_facts: dict) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    env_names = set()
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        env_names |= set(environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment])
    conns = {name.removeprefix("AIRFLOW_CONN_").lower() for name in env_names if name.startswith("AIRFLOW_CONN_")}
    signing = re.search(r'SIGNING_CONN_ID = "(\w+)"', (ROOT / "plugins" / "callback_operator.py").read_text())
    conns |= {signing.group(1), dag_facts["defaults"]["aws_conn_id"]}
    assert {"voicebatch_s3", "voicebatch_callback", "aws_default"} <= conns, conns
    text = page("connections.md")
    assert [c for c in conns if f"`{c}`" not in text and f" {c} " not in text] == []


def test_every_output_format_is_documented(dag_facts: dict) -> None:
    audio = set(dag_facts["params"]["audio_format"]["enum"]) - {None}
    text = page("outputs.md")
    formats = text[text.index("## Output formats") :]
    for name in sorted(audio):
        assert name.upper() in formats, f"audio format {name}"
    for name in ("SRT", "WebVTT", "CSV timing table", "manifest.json", "latest.json", "RF64"):
        assert name in text, name
    # Every column the timing table's header has, from the code that writes it.
    try:  # where the timing table's writer lives, before and after the package layout
        from voicebatch.render.timetable import COLUMNS
    except ImportError:
        from voicebatch.render.timetable import COLUMNS

    assert set(COLUMNS) <= table_names(formats)
    assert "report.json" in page("report.md") and "callback.json" in page("callbacks.md")


def test_every_voicebatch_setting_in_the_code_is_in_the_settings_page() -> None:
    used = set()
    for folder in ("src", "plugins", "dags", "deploy"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".sh", ".yaml"} and path.is_file():
                used |= set(re.findall(r"\bVOICEBATCH_[A-Z_]*[A-Z]\b", path.read_text(errors="replace")))
    used |= set(re.findall(r"^(VOICEBATCH_[A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    text = page("settings.md")
    assert sorted(v for v in used if f"`{v}`" not in text) == []


def test_the_readme_keeps_the_two_commands_and_links_every_page() -> None:
    text = README.read_text()
    commands = re.search(r"```bash\n(.*?)```", text, flags=re.DOTALL).group(1)
    assert [line.split("#")[0].strip() for line in commands.strip().splitlines()] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE) and re.search(r"^test:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text(), "CI runs the README's test command"
    links = set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text))
    local = {link for link in links if "://" not in link}
    assert [link for link in local if not (ROOT / link).exists()] == [], "every local link resolves"
    pages = {str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md")}
    assert pages - local == set(), "the README links every docs page"
