"""The package's layer order, checked on the source: no module imports a higher layer, and none
reaches into another subpackage's private modules or names.

Layers, lowest first: the base modules ``workbench/_*.py`` (importable from anywhere), then
the subpackages in ``LAYERS``, then the top-level modules (cli, demo, report, ``__main__``).
A module may import its own subpackage, base modules and lower layers' public names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).resolve().parent

#: Subpackages by layer, lowest first; names in one tuple are peers of the same rank.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("spaces", "features"),
    ("benchmarks",),
    ("data",),
    ("training",),
    ("store",),
    ("collect",),
    ("predictors",),
    ("evaluation",),
    ("search",),
    ("viz",),
    ("widgets", "integrations"),
)
#: Top-level modules: the highest layer (they may import one another).
TOP_MODULES = frozenset({"__init__", "__main__", "cli", "demo", "report"})

BASE_RANK = -1
RANK = {pkg: rank for rank, names in enumerate(LAYERS) for pkg in names}
TOP_RANK = len(LAYERS)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass(frozen=True)
class Unit:
    """Where a module sits: its layer rank and subpackage (None for base and top modules)."""

    rank: int
    package: str | None


def unit_of(module: str) -> Unit | None:
    """The layer of dotted ``module`` inside workbench (None if it is not a workbench module)."""
    parts = module.split(".")
    if parts[0] != "workbench":
        return None
    if len(parts) == 1:  # the root package itself: only ``__version__``, imported by anyone
        return Unit(BASE_RANK, None)
    head = parts[1]
    if head in RANK:
        return Unit(RANK[head], head)
    if head in TOP_MODULES:
        return Unit(TOP_RANK, None)
    if _private(head):
        return Unit(BASE_RANK, None)
    raise AssertionError(f"module {module!r} is in no layer: add {head!r} to LAYERS or TOP_MODULES")


def module_name(path: Path) -> str:
    """Dotted name of the module at ``path`` (``spaces/__init__.py`` -> ``workbench.spaces``)."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a (possibly relative) ``from ... import`` names."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool
             ) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) pairs of one import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    source = _absolute(node, module, is_package)
    return [(source, alias.name) for alias in node.names]


@cache
def _submodules(dotted: str) -> frozenset[str]:
    """Names of the modules and subpackages directly inside workbench module ``dotted``."""
    folder = ROOT.parent.joinpath(*dotted.split("."))
    if dotted.split(".")[0] != "workbench" or not folder.is_dir():
        return frozenset()
    return frozenset({p.stem for p in folder.glob("*.py")}
                     | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()})


def violations(source: str, module: str, *, is_package: bool = False, where: str = "<string>",
               submodules: set[str] | frozenset[str] | None = None) -> list[str]:
    """Each import in ``source`` (module ``module``) that breaks the layer rules, as a message.

    ``submodules`` names the modules inside an imported package (``from workbench.x import _y``
    imports module ``_y`` when ``_y`` is one); by default they are read from the source tree.
    """
    me = unit_of(module)
    assert me is not None, f"{module!r} is not a workbench module"
    found: list[str] = []
    imports = [n for n in ast.walk(ast.parse(source))
               if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in sorted(imports, key=lambda n: (n.lineno, n.col_offset)):
        higher: dict[str, None] = {}  # layers above this module, in order of appearance
        private: dict[str, dict[str, None]] = {}  # other subpackage -> its private parts
        for target, name in _targets(node, module, is_package):
            inside = submodules if submodules is not None else _submodules(target)
            full = f"{target}.{name}" if name is not None and name in inside else target
            them = unit_of(full)
            if them is None:
                continue
            if them.rank > me.rank:
                higher[full.split(".")[1]] = None
            if them.package is not None and them.package != me.package:
                parts = [p for p in full.split(".")[2:] if _private(p)]
                if name is not None and full == target and _private(name):
                    parts.append(name)
                if parts:
                    private.setdefault(them.package, {}).update(dict.fromkeys(parts))
        at = f"{where}:{node.lineno}: {ast.unparse(node)!r}"
        if higher:
            found.append(f"{at} imports a higher layer ({', '.join(higher)} above {module})")
        found += [f"{at} reaches into {pkg}'s private {', '.join(parts)} (use workbench.{pkg})"
                  for pkg, parts in private.items()]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_subpackage_and_top_module_is_placed() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    layered = set(RANK)
    assert packages == layered, (
        f"subpackages not in LAYERS: {sorted(packages - layered)}; "
        f"LAYERS names that do not exist: {sorted(layered - packages)}")
    top = {p.stem for p in ROOT.glob("*.py") if not _private(p.stem)}
    assert top <= TOP_MODULES, f"top-level modules in no layer: {sorted(top - TOP_MODULES)}"
    assert all(len(names) == len(set(names)) for names in LAYERS)
    assert len(RANK) == sum(len(names) for names in LAYERS), "a subpackage is in two layers"


def test_no_module_imports_a_higher_layer_or_a_private_module() -> None:
    found = []
    for path in _modules():
        found += violations(path.read_text(encoding="utf-8"), module_name(path),
                            is_package=path.name == "__init__.py",
                            where=str(path.relative_to(ROOT.parent)))
    assert not found, "layer rule broken:\n" + "\n".join(found)


def test_the_checker_flags_bad_imports() -> None:
    """The checker can fail: synthetic sources with each kind of bad import."""
    def check(src: str, module: str = "workbench.evaluation._x", *, is_package: bool = False,
              submodules: frozenset[str] = frozenset()) -> list[str]:
        return violations(src, module, is_package=is_package, submodules=set(submodules))

    assert check("from workbench.viz import plot_predicted_vs_true")[0].endswith(
        "imports a higher layer (viz above workbench.evaluation._x)")
    assert "higher layer" in check("from ..viz import plot_x")[0]  # relative, resolved
    assert "higher layer" in check("import workbench.search")[0]
    assert "higher layer" in check("def f():\n    from workbench.cli import main\n")[0]  # lazy
    assert "higher layer" in check("from workbench import demo", submodules=frozenset({"demo"}))[0]
    (msg,) = check("from workbench.spaces._nb101 import NB101Cell")
    assert msg.startswith("<string>:1:") and "spaces's private _nb101" in msg
    assert "private _nb101" in check("from workbench.spaces import _nb101",
                                     submodules=frozenset({"_nb101"}))[0]
    assert "private _paired" in check("from workbench.store import _paired")[0]
    both = check("from workbench.viz._theme import apply_theme")
    assert len(both) == 2  # higher and private

    # allowed: own subpackage (absolute or relative), base modules, lower public names
    assert check("from workbench.evaluation._metrics import _paired") == []
    assert check("from ._metrics import mse\nfrom . import _metrics") == []
    assert check("from workbench._tables import read_table\nfrom .._io import atomic_write") == []
    assert check("from workbench.benchmarks import get_benchmark\nimport numpy") == []
    assert check("from workbench import __version__", "workbench.spaces") == []
    assert check("from .. import _paths", "workbench.spaces", is_package=True) == []
    assert check("from workbench.viz import x", "workbench.cli") == []  # top imports all
    assert check("from workbench.collect import collect", "workbench.collect._ray") == []


def test_module_names_and_relative_imports_resolve() -> None:
    assert module_name(ROOT / "spaces" / "__init__.py") == "workbench.spaces"
    assert module_name(ROOT / "spaces" / "_nb201.py") == "workbench.spaces._nb201"
    node = ast.parse("from .._tables import read_table").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _absolute(node, "workbench.spaces._nb201", False) == "workbench._tables"
    assert _absolute(node, "workbench.spaces", True) == "workbench._tables"


def test_docs_architecture_lists_the_layers_in_order() -> None:
    """docs/architecture.md's layer table names the same subpackages in the same order."""
    import re

    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+?) \|", doc, flags=re.MULTILINE)
    documented = tuple(tuple(re.findall(r"`(\w+)`", names)) for _, names in rows)
    assert documented == LAYERS, f"docs/architecture.md layers {documented} != {LAYERS}"
