"""The import arrows of ``refquant/`` point down (design.md §1, §2), read from the source with ``ast``.

Every ``import x`` and ``from x import y`` in every module under ``refquant/`` counts, relative
imports resolved, and imports inside functions too (a lazy import that points up is still an
arrow that points up). ``from pkg import name`` is an arrow to ``pkg.name`` when that is a
module, else to ``pkg`` (its ``__init__``). The implicit import of a parent package is not an
arrow (each package's ``__init__`` is checked as a module of its own layer).

Rules:

* a module imports only the layers its row of :data:`LAYERS` allows: core -> core;
  kernels -> core, kernels; ops -> + ops; faces -> + faces; the float-training column (``nn``,
  ``models``, ``data``) stands beside the runtime on top of the core (core and itself only);
  runtime, flows and entry points import anything below them;
* ``refquant/__init__.py`` (the namespace) imports core modules only, and nothing it pulls in
  imports Numba;
* the module graph is a DAG (no import cycles);
* no package ``__init__`` binds a name equal to one of its submodules to anything but that
  submodule (``refquant.kernels.gemm`` must be the module, never a re-exported function);
* no ``importlib.import_module`` / ``__import__`` calls: they dodge this test.

A new package is one more pattern in :data:`LAYERS`. A module that matches no row belongs to
:data:`DEFAULT_LAYER` (the top: it may import anything, nothing below may import it).
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG_DIR = ROOT / "refquant"

# --------------------------------------------------------------------------- the layer table
# Bottom to top. `modules`: fnmatch patterns of paths relative to refquant/ ("kernels/*" is every
# module of the package, its __init__ and subpackages included). `may_import`: the layers this
# layer's modules may import. A module belongs to the first row that matches it.
LAYERS = {
    "namespace": {"modules": ("__init__.py",), "may_import": ("core",)},  # `import refquant`: core only
    "core": {
        "modules": ("dtypes.py", "rounding.py", "qparams.py", "quantization.py", "specs.py",
                    "modes.py", "fixedpoint.py", "fixedpoint_math.py", "fixedpoint_multiplier.py", "profiles.py",
                    "errors.py", "cpu.py", "_validate.py"),
        "may_import": ("core",)},
    "kernels": {"modules": ("kernels/*",), "may_import": ("core", "kernels")},
    "ops": {"modules": ("ops/*",), "may_import": ("core", "kernels", "ops")},
    "faces": {"modules": ("backends/*",), "may_import": ("core", "kernels", "ops", "faces")},
    # float training stands beside the runtime, on top of the core (design.md §1)
    "training": {"modules": ("nn/*", "models.py", "data/*"), "may_import": ("core", "training")},
    "runtime": {"modules": ("qmodel.py", "qmodel/*"), "may_import": ("core", "kernels", "ops", "faces", "runtime")},
    "flows": {
        "modules": ("calibration.py", "calibration/*", "passes.py", "passes/*", "ptq.py", "ptq/*", "qat.py",
                    "qat/*", "prune.py", "prune/*", "distill.py", "distill/*", "finetune.py", "finetune/*",
                    "evaluate.py", "evaluate/*"),
        "may_import": ("core", "kernels", "ops", "faces", "training", "runtime", "flows")},
    "entry": {
        "modules": ("cli.py", "cli/*", "__main__.py", "testing/*", "interop/*"),
        "may_import": ("namespace", "core", "kernels", "ops", "faces", "training", "runtime", "flows", "entry")},
}
DEFAULT_LAYER = "entry"  # anything not listed: the top
RANK = {name: i for i, name in enumerate(LAYERS)}  # only for wording: "points up" vs "is not allowed"
NO_NUMBA = ("numba", "llvmlite")  # third-party packages `import refquant` must not load
DYNAMIC_IMPORTS = ("importlib.import_module", "__import__", "importlib.__import__")


# --------------------------------------------------------------------------- the module graph


@dataclass
class Module:
    name: str  # dotted, e.g. "refquant.kernels.gemm"; a package is its own name
    path: Path
    is_package: bool
    tree: ast.Module
    edges: list = field(default_factory=list)  # (lineno, target module name)
    external: list = field(default_factory=list)  # (lineno, top-level third-party name)

    @property
    def rel(self) -> str:
        return self.path.relative_to(PKG_DIR).as_posix()

    @property
    def shown(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _discover() -> dict[str, Module]:
    mods = {}
    for path in sorted(PKG_DIR.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = Module(".".join(parts), path, is_pkg, ast.parse(path.read_text(), str(path)))
    return mods


def _nearest_module(name: str, mods) -> str | None:
    """``name`` or its closest enclosing module/package that exists (``refquant.x.attr`` -> ``refquant.x``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _from_base(mod: Module, node: ast.ImportFrom) -> str:
    """The dotted package or module ``from X import ...`` names, relative levels resolved."""
    if not node.level:
        return node.module
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    if node.level - 1 > len(base) - 1:
        raise AssertionError(f"{mod.shown}:{node.lineno}: relative import beyond the top-level package")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(mod: Module, node, mods) -> list[str]:
    """The dotted names an import statement reaches: ``from X import y`` reaches ``X.y`` if that is a
    module, else ``X``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = _from_base(mod, node)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]


def _build() -> dict[str, Module]:
    mods = _discover()
    for mod in mods.values():
        for node in ast.walk(mod.tree):  # every statement, function bodies included
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for t in _targets(mod, node, mods):
                if t == "refquant" or t.startswith("refquant."):
                    target = _nearest_module(t, mods)
                    if target is None:
                        raise AssertionError(f"{mod.shown}:{node.lineno} imports {t}, which does not exist")
                    mod.edges.append((node.lineno, target))
                else:
                    mod.external.append((node.lineno, t.split(".")[0]))
    return mods


MODULES = _build()


def layer_of(mod: Module) -> str:
    for name, row in LAYERS.items():
        if any(fnmatch.fnmatchcase(mod.rel, pattern) for pattern in row["modules"]):
            return name
    return DEFAULT_LAYER


# --------------------------------------------------------------------------- the table itself


def test_layer_table_is_consistent():
    """Every layer names layers that exist; every explicit core module exists (a stale row fails here)."""
    for name, row in LAYERS.items():
        unknown = set(row["may_import"]) - set(LAYERS)
        assert not unknown, f"layer {name} may import unknown layers {sorted(unknown)}"
        assert name in row["may_import"] or name == "namespace", f"layer {name} should import itself"
    assert DEFAULT_LAYER in LAYERS
    missing = [p for p in LAYERS["core"]["modules"] if not (PKG_DIR / p).is_file()]
    assert not missing, f"core modules listed in LAYERS but absent from refquant/: {missing}; update the table"


def test_parser_sees_known_edges():
    """The graph is read correctly: relative, aliased, package-qualified and lazy imports all resolve."""
    def targets(name):
        return {t for _, t in MODULES[name].edges}

    assert "refquant.ops.layers" in targets("refquant.backends._tflite_ops")  # from ..ops import layers
    assert "refquant._validate" in targets("refquant.quantization")  # from . import _validate as V
    assert "refquant.profiles" in targets("refquant.cli.sysinfo")  # a lazy import inside info()
    assert "refquant.errors" in targets("refquant")  # refquant/__init__.py: from . import errors
    assert {layer_of(MODULES[n]) for n in ("refquant", "refquant.quantization", "refquant.kernels.gemm",
                                          "refquant.ops.layers", "refquant.backends.tflite", "refquant.nn.module",
                                          "refquant.cli")} == {"namespace", "core", "kernels", "ops", "faces",
                                                                "training", "entry"}


# --------------------------------------------------------------------------- rules


def test_arrows_point_down():
    bad = []
    for mod in MODULES.values():
        a = layer_of(mod)
        allowed = LAYERS[a]["may_import"]
        for line, target in mod.edges:
            b = layer_of(MODULES[target])
            if b in allowed:
                continue
            how = "points up" if RANK[b] > RANK[a] else f"is not allowed: {a} imports only {', '.join(allowed)}"
            bad.append(f"{mod.shown}:{line} imports {target} (layer {a} -> layer {b} {how})")
    assert not bad, "imports that break the layering (design.md §1):\n  " + "\n  ".join(sorted(set(bad)))


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(t for _, t in MODULES[m].edges)
    return seen


def test_namespace_pulls_in_core_only_and_no_numba():
    """``import refquant`` loads the core and nothing else: no kernels, no faces, no Numba (read statically)."""
    reach = _closure("refquant")
    outside = sorted(m for m in reach - {"refquant"} if layer_of(MODULES[m]) != "core")
    assert not outside, f"`import refquant` reaches modules outside the core: {outside}"
    numba = sorted(f"{MODULES[m].shown}:{line} imports {ext}" for m in reach for line, ext in MODULES[m].external
                   if ext in NO_NUMBA)
    assert not numba, "`import refquant` would load Numba:\n  " + "\n  ".join(numba)


def test_import_refquant_does_not_load_numba():
    """The same, at run time, in a fresh interpreter."""
    code = ("import sys, refquant; bad = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
            f"{NO_NUMBA!r}}} | {{m for m in sys.modules if m.startswith(('refquant.kernels', 'refquant.ops', "
            "'refquant.backends'))}); print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, f"`import refquant` loaded {r.stdout.strip()} {r.stderr.strip()}"


def _find_cycle() -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    graph = {m: sorted({t for _, t in mod.edges if t != m}) for m, mod in MODULES.items()}
    colour = dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done
    for root in sorted(graph):
        if colour[root]:
            continue
        stack, path = [(root, iter(graph[root]))], [root]
        colour[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(graph[nxt])))
                path.append(nxt)
    return None


def test_no_import_cycles():
    cycle = _find_cycle()
    if cycle:
        lines = []
        for a, b in itertools.pairwise(cycle):
            line = min(ln for ln, t in MODULES[a].edges if t == b)
            lines.append(f"{MODULES[a].shown}:{line} imports {b}")
        pytest.fail("import cycle " + " -> ".join(cycle) + ":\n  " + "\n  ".join(lines))


def _top_level_statements(body):
    """Module-level statements, looking inside if/try/with blocks but not into functions or classes."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)) and getattr(node, name, None):
                yield from _top_level_statements(getattr(node, name))
        if isinstance(node, ast.Try):
            for h in node.handlers:
                yield from _top_level_statements(h.body)


def _bindings(pkg: Module):
    """(lineno, bound name, what it is bound to) for each module-level binding of a package ``__init__``;
    "what" is a dotted module name when the binding is a module."""
    for node in _top_level_statements(pkg.tree.body):
        if isinstance(node, ast.ImportFrom):
            base = _from_base(pkg, node)
            for alias in node.names:
                yield node.lineno, alias.asname or alias.name, f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b` binds a; `import a.b as c` binds c to a.b
                yield node.lineno, alias.asname or alias.name.split(".")[0], \
                    alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            yield node.lineno, node.name, f"a {kind} defined there"
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        yield node.lineno, n.id, "an assigned value"


def test_no_submodule_hidden_by_a_package_binding():
    """``pkg.x`` is the module ``pkg/x.py`` whenever that file exists (style.md: a module's name that
    hides a same-named function is to grow out of)."""
    bad = []
    for pkg in MODULES.values():
        if not pkg.is_package:
            continue
        for line, bound, what in _bindings(pkg):
            sub = f"{pkg.name}.{bound}"
            if sub in MODULES and what != sub:
                bad.append(f"{pkg.shown}:{line} binds {bound!r} to {what}, hiding the submodule {sub}")
    assert not bad, "package names that hide a submodule:\n  " + "\n  ".join(bad)


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_no_dynamic_imports():
    """``importlib.import_module`` (or ``__import__``) hides an arrow from this test: import statically."""
    bad = []
    for mod in MODULES.values():
        aliases = {}  # local name -> dotted original, from `from importlib import import_module [as f]`
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.ImportFrom) and node.module == "importlib" and not node.level:
                for a in node.names:
                    aliases[a.asname or a.name] = f"importlib.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "importlib" and a.asname:
                        aliases[a.asname] = "importlib"
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                head, _, rest = name.partition(".")
                full = aliases.get(head, head) + (f".{rest}" if rest else "")
                if full in DYNAMIC_IMPORTS:
                    arg = ast.unparse(node.args[0]) if node.args else ""
                    bad.append(f"{mod.shown}:{node.lineno} calls {full}({arg})")
    assert not bad, "dynamic imports in refquant/ (use an import statement):\n  " + "\n  ".join(bad)


def test_no_invalid_escape_in_any_module():
    """A ``\\l`` in a non-raw docstring is a SyntaxWarning today and an error tomorrow; the API
    pages would show it mangled. Every module compiles with warnings as errors."""
    import warnings

    bad = []
    for path in sorted(PKG_DIR.rglob("*.py")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
            except (SyntaxError, SyntaxWarning, DeprecationWarning) as err:
                bad.append(f"{path.relative_to(ROOT)}: {err}")
    assert not bad, "\n".join(bad)
