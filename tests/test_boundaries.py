"""The library never imports Airflow, importing it loads no heavy module, and its packages import
only from the layers before them (in the order data moves)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "voicebatch"
HEAVY = ("torch", "f5_tts", "librosa", "pandas", "airflow", "soundfile", "matplotlib")


def test_no_module_of_the_library_imports_airflow() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "airflow"]
    assert offenders == []


def test_importing_every_library_module_loads_no_heavy_module() -> None:
    modules = sorted(
        ".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in SRC.rglob("*.py")
        if p.name != "__main__.py"  # running the command is not importing it
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(h for h in {HEAVY!r} if h in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"heavy modules loaded at import: {result.stdout}"


# The packages in the order data moves, each importing only from its own layer or those before it
# (the package docstrings say the same). The base layer is what every layer shares.
LAYERS = (
    {"(root)", "errors", "settings", "audio", "keys"},
    {"locations"},
    {"text"},
    {"inputs"},
    {"synthesis"},
    {"verify"},
    {"render"},
    {"publish"},
    {"run"},
    {"cli"},
)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def test_every_package_imports_only_from_the_layers_before_it() -> None:
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        own = relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 else relative.stem
        own = "(root)" if own == "__init__" else own
        assert own in rank, f"{relative}: a new top-level module or package needs its place in LAYERS"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Imports for annotations only (under ``if TYPE_CHECKING:``) never run: they name a record's
        # type, not a dependency. Every other import counts, function-level ones included.
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "voicebatch" and rank[_layer(name)] > rank[own]:
                    upward.append(f"{relative}:{node.lineno} imports {name}")
    assert upward == []


def test_each_package_says_what_it_owns_and_may_import() -> None:
    for layer in LAYERS[1:]:
        (name,) = layer
        doc = ast.get_docstring(ast.parse((SRC / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{name}/__init__.py: a docstring naming what it owns and may import"
