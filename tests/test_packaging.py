"""The wheel holds what users run: the packages setuptools finds from pyproject.toml's configuration are
`encodec_fx` and `entropy`, never the maintainer tooling in `training/` (corpus builder, compact resume
checkpoints, shipping), and nothing in them imports that tooling. README's claims about the package agree
with pyproject.toml."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAINTAINER_MODULES = ("encodec_fx.train.corpus", "encodec_fx.train.ship", "encodec_fx.train.compact")

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def wheel_packages() -> list[str]:
    """The packages the wheel gets: setuptools' own finder with pyproject.toml's [tool.setuptools.packages.find]."""
    from setuptools import find_namespace_packages, find_packages
    find = pyproject()["tool"]["setuptools"]["packages"]["find"]
    finder = find_namespace_packages if find.get("namespaces", True) else find_packages
    return finder(where=str(ROOT), include=find.get("include", ["*"]), exclude=find.get("exclude", ()))


def test_the_wheel_gets_the_user_packages_and_no_maintainer_tooling():
    packages = wheel_packages()
    assert {"encodec_fx", "encodec_fx.cli", "encodec_fx.train", "encodec_fx.pretrained", "entropy"} <= set(packages)
    assert not [name for name in packages if name.partition(".")[0] not in ("encodec_fx", "entropy")], packages
    assert not [name for name in packages if name.startswith(MAINTAINER_MODULES)], packages


def test_the_maintainer_tooling_lives_in_training_and_not_in_the_package():
    for name in MAINTAINER_MODULES:
        assert importlib.util.find_spec(name) is None, f"{name} is back in the installed package"
    for name in ("training.corpus", "training.ship", "training.compact"):
        assert importlib.util.find_spec(name) is not None, f"{name} is missing from the checkout"


def test_no_package_module_imports_the_maintainer_tooling():
    """The package must work where `training/` is absent (an installed wheel)."""
    offending = []
    for package in ("encodec_fx", "entropy"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                offending += [f"{path.relative_to(ROOT)}: {name}" for name in names
                              if name.partition(".")[0] == "training"]
    assert not offending


def test_the_readme_states_the_torch_version_pyproject_requires():
    floors = [re.fullmatch(r"torch\s*>=\s*([\d.]+)", dependency.split(";")[0].strip())
              for dependency in pyproject()["project"]["dependencies"]]
    floor = next(match.group(1) for match in floors if match)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claimed = set(re.findall(r"torch ≥ ([\d.]+)", readme)) | set(re.findall(r"torch >= ?([\d.]+)", readme))
    assert claimed == {floor}, f"README claims torch ≥ {sorted(claimed)}; pyproject.toml requires torch>={floor}"
