"""Griffe extension: turn Sphinx roles in refquant's docstrings into mkdocstrings cross-references.

refquant's docstrings write ``:func:`quant_range```, ``:class:`refquant.qparams.QParams``` and
``:mod:`.gemm```, as Sphinx does. mkdocstrings does not read these roles, so this extension rewrites
them before rendering:

* a target that resolves to an object rendered on some API page becomes a link,
  ``[`quant_range`][refquant.dtypes.quant_range]``;
* any other target (a module without a page, the standard library, a private helper) becomes plain
  code, so ``mkdocs build --strict`` never fails on a dangling reference.

"Rendered" is read off the ``::: identifier`` lines of ``docs/**/*.md``: an object is rendered if it
is such an identifier, or a public member (no ``_`` prefix) of one, with a docstring, reached without
passing through another module. A page with ``members: false`` renders only its identifier. A target is resolved
relative to the docstring's module (its own members and imports), then its package, then as an
absolute path; leading ``~`` and ``.`` work as in Sphinx.

It also turns the reStructuredText literal-block marker (a line ending in ``::`` before a blank
line) into a plain colon, and splits Google-style entries that name two parameters at once
(``narrow, reduce_range: ...``), which griffe does not parse, into one entry per name. Registered in ``mkdocs.yml`` under the python handler's ``extensions``.
"""

from __future__ import annotations

import re
from pathlib import Path

import griffe

_ROLE = re.compile(r":(?:py:)?(mod|func|class|meth|attr|data|exc|obj|const):`(~?)([^`<>]+?)`")
_IDENT = re.compile(r"^:::\s+([\w.]+)\s*$")
_DOCS = Path(__file__).resolve().parent.parent


def _rendered_identifiers() -> dict[str, bool]:
    """Map each ``::: ident`` in the docs to whether its members are rendered too."""
    found: dict[str, bool] = {}
    for md in _DOCS.rglob("*.md"):
        lines = md.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = _IDENT.match(line.strip())
            if not m:
                continue
            options = "\n".join(lines[i + 1:i + 8])
            found[m.group(1)] = found.get(m.group(1), False) or not re.search(r"members:\s*false", options)
    return found


_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Keyword Args|Keyword Arguments):\s*$")
_GROUPED = re.compile(r"^(\s+)([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)(\s*(?:\([^)]*\))?):(.*)$")


def _split_grouped_entries(text: str) -> str:
    """Split a Google-style entry ``a, b: text`` (not supported by griffe) into ``a: text`` and
    ``b: Same as ``a``.``, inside Args/Attributes sections only."""
    out: list[str] = []
    section = None   # indentation of the current section header, or None outside sections
    entry = None     # indentation of this section's entries, once seen
    pending: list[str] = []  # "Same as" lines to emit after the current entry's continuation

    def flush():
        out.extend(pending)
        pending.clear()

    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip())
        if not line.strip():
            flush()  # a blank line ends the entry (and usually the section)
        sec = _SECTION.match(line)
        if sec or (section is not None and line.strip() and lead <= section):
            flush()
            section, entry = (len(sec.group(1)), None) if sec else (None, None)
            out.append(line)
            continue
        if section is not None and line.strip():
            if entry is None:
                entry = lead
            if lead <= entry:
                flush()
                m = _GROUPED.match(line) if lead == entry else None
                if m:
                    names = [n.strip() for n in m.group(2).split(",")]
                    out.append(f"{m.group(1)}{names[0]}{m.group(3)}:{m.group(4)}")
                    pending.extend(f"{m.group(1)}{n}{m.group(3)}: Same as ``{names[0]}``." for n in names[1:])
                    continue
        out.append(line)
    flush()
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of a loaded package."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered = _rendered_identifiers()

    # ------------------------------------------------------------------ lookup
    def _get(self, root: griffe.Module, path: str):
        top, _, rest = path.partition(".")
        if top != root.name:
            return None
        obj = root
        for part in rest.split(".") if rest else []:
            members = getattr(obj, "members", None)
            if members is None or part not in members:
                return None
            obj = members[part]
            if obj.is_alias:  # follow imports inside the package only
                target = obj.target_path
                obj = self._get(root, target)
                if obj is None:
                    return None
        return obj

    def _is_rendered(self, path: str) -> bool:
        if path in self._rendered:
            return True
        for ident, with_members in self._rendered.items():
            if not with_members or not path.startswith(ident + "."):
                continue
            rest = path[len(ident) + 1:].split(".")
            if any(p.startswith("_") for p in rest):
                continue
            obj = self._get(self._root, ident)
            ok = obj is not None
            for part in rest:
                if not ok:
                    break
                member = obj.members.get(part) if hasattr(obj, "members") else None
                if member is None or member.is_alias or member.is_module:
                    ok = False
                    break
                obj = member
            # mkdocstrings hides members without a docstring (show_if_no_docstring: false)
            ok = ok and (obj.has_docstrings if obj.is_class else obj.docstring is not None)
            if ok:
                return True
        return False

    def _resolve(self, obj, target: str) -> str | None:
        module = obj if obj.is_module else obj.module
        package = module if module.is_package else module.parent
        candidates = []
        if target.startswith("."):
            base = package
            t = target[1:]
            while t.startswith("."):
                base = base.parent or base
                t = t[1:]
            candidates.append(f"{base.path}.{t}")
        else:
            if not obj.is_module and obj.parent is not None and obj.parent.is_class:
                candidates.append(f"{obj.parent.path}.{target}")
            if obj.is_class:
                candidates.append(f"{obj.path}.{target}")
            candidates += [f"{module.path}.{target}", f"{package.path}.{target}", target]
        for c in candidates:
            found = self._get(self._root, c)
            if found is not None:
                return found.path
        return None

    # ------------------------------------------------------------------ rewrite
    def _rewrite(self, obj, text: str) -> str:
        def repl(m: re.Match) -> str:
            short, target = m.group(2) == "~", m.group(3).strip()
            shown = target.split(".")[-1] if short else target.lstrip(".")
            path = self._resolve(obj, target)
            if path is not None and self._is_rendered(path):
                return f"[`{shown}`][{path}]"
            return f"`{shown}`"

        text = _ROLE.sub(repl, text)
        text = re.sub(r"(?<=\S)::[ \t]*\n(?=[ \t]*\n)", ":\n", text)
        return _split_grouped_entries(text)

    def _walk(self, obj) -> None:
        if obj.is_alias:
            return
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj, obj.docstring.value)
        for member in getattr(obj, "members", {}).values():
            if not member.is_alias:
                self._walk(member)

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._root = pkg
        self._walk(pkg)
