"""Every public name of course_lib has a robustness property (tests/test_robustness_*.py).

Public = a function or class defined in its module whose name has no leading underscore,
and the public methods a class defines itself (``forward`` included). A new public function
without a robustness test makes :func:`test_every_public_name_has_a_robustness_test` fail.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from pathlib import Path

from test_robustness_support import COVERED

import course_lib

# Modules whose robustness tests are still to be written: they are being rewritten at the
# moment, so their properties follow once the rewrite has landed. Remove a pattern as soon as
# its module has its tests; the list must end empty. (Patterns match dotted module names
# below course_lib, e.g. "widgets.*" matches course_lib.widgets.tokenizer_box.)
PENDING = (
    # being rewritten elsewhere at the moment
)


def _is_pending(module_name: str) -> bool:
    short = module_name.removeprefix("course_lib.")
    return any(fnmatch.fnmatchcase(short, pattern) for pattern in PENDING)


def _modules() -> list[str]:
    names = ["course_lib"]
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            names.append(info.name)
    return sorted(names)


def public_names(module_name: str) -> list[str]:
    """Qualified public functions, classes and class methods defined in ``module_name``."""
    module = importlib.import_module(module_name)
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj):
            found.append(f"{module_name}.{name}")
        elif inspect.isclass(obj):
            found.append(f"{module_name}.{name}")
            for method, member in vars(obj).items():
                function = member.__func__ if isinstance(member, (classmethod, staticmethod)) \
                    else member
                # Methods a base class generates for the subclass (matplotlib's Artist.set)
                # belong to that library, not to the course.
                if inspect.isfunction(function) and function.__module__ == module_name \
                        and (method == "forward" or not method.startswith("_")):
                    found.append(f"{module_name}.{name}.{method}")
    return found


def _load_robustness_tests() -> None:
    for path in sorted(Path(__file__).parent.glob("test_robustness_*.py")):
        importlib.import_module(path.stem)


def test_every_public_name_has_a_robustness_test():
    _load_robustness_tests()
    owed = [name for module in _modules() if not _is_pending(module)
            for name in public_names(module)]
    missing = [name for name in owed if name not in COVERED]
    assert not missing, f"public names without a robustness test: {missing}"
    assert len(owed) > 50  # the walk found the API (it is not vacuously empty)


def test_covered_names_exist():
    _load_robustness_tests()
    every = {name for module in _modules() for name in public_names(module)}
    # Names defined in a private module (re-exported elsewhere) are not walked: skip them.
    walked = {name for name in COVERED
              if not any(part.startswith("_") for part in name.split(".")[1:-1])}
    stale = sorted(walked - every)
    assert not stale, f"robustness tests cover names that are not public API: {stale}"


def test_the_walk_finds_methods_and_skips_private_names():
    names = public_names("course_lib.text")
    assert "course_lib.text.BPETokenizer.encode" in names
    assert "course_lib.text.TokenEmbedding.forward" in names
    assert not any(part.startswith("_") and part != "forward"
                   for name in names for part in name.split(".")[2:])
    assert "course_lib._validation" not in _modules()
