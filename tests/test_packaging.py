"""environment.yml, pyproject.toml and constraints.txt describe one and the same environment."""

import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def pyproject(repo_root):
    return tomllib.loads((repo_root / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def pins(repo_root):
    lines = (repo_root / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {name.lower().replace("_", "-"): Version(version) for name, version in pairs}


def _requirements(pyproject):
    project = pyproject["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in requirements]


def test_torch_and_torchaudio_are_pinned_as_a_matched_pair(pins):
    assert pins["torch"] == Version("2.11.0")
    assert pins["torchaudio"] == Version("2.11.0")


def test_every_requirement_is_pinned_within_its_range(pyproject, pins):
    for requirement in _requirements(pyproject):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is required by pyproject.toml but not pinned"
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]} breaks {requirement}"


def test_the_issue_requirements_are_declared(pyproject):
    names = {r.name.lower() for r in _requirements(pyproject)}
    needed = {"torch", "torchaudio", "numpy", "matplotlib", "plotly", "anywidget", "ipywidgets",
              "jupyterlab", "scikit-learn", "tqdm", "pytest", "nbval", "pytest-xdist", "ruff",
              "nbstripout"}
    assert needed <= names
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains("3.10")


def test_environment_yml_installs_this_package_with_the_constraints(repo_root, pyproject):
    environment = yaml.safe_load((repo_root / "environment.yml").read_text())
    assert "conda-forge" in environment["channels"]
    conda_packages = [d for d in environment["dependencies"] if isinstance(d, str)]
    python = next(d for d in conda_packages if d.startswith("python"))
    assert "pip" in conda_packages
    python_version = python.split("=", 1)[1]
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(python_version + ".0")
    pip_lines = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_lines
    assert '-e ".[dev]"' in pip_lines


def test_every_subpackage_is_packaged(pyproject, repo_root):
    from fnmatch import fnmatch

    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [".".join(init.parent.relative_to(repo_root).parts)
                for init in (repo_root / "course_lib").rglob("__init__.py")]
    assert len(packages) > 1
    missing = [name for name in packages if not any(fnmatch(name, p) for p in include)]
    assert not missing, f"pyproject.toml's package list leaves out {missing}"
