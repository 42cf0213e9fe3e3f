"""The package's layers, read from its source: no import circle, no import up the layers, and an
import inside a function only where it keeps torch out (docs/architecture.md, Package).

Every module of src/bert_ablation is parsed with ast; its imports of the package's own modules,
at the top and inside functions alike, are the graph's edges.
"""

import ast
from pathlib import Path

import pytest

from bert_ablation import schema
from bert_ablation.facts.architectures import ARCHITECTURES

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bert_ablation"

# Bottom to top; a module may import its own layer's modules and any below, never one above.
# Named by the module's first part under bert_ablation (a package or a top-level module).
LAYERS = (
    ("facts",),  # torch-free facts: task specs and kinds, heads, objectives, mechanisms, families
    ("storage", "runtime", "schema", "hub", "flops"),  # files and hashes, a job's log and memory, the schema, hub
    # reads, the FLOP model
    ("plan", "config", "settings"),  # what a validated config asks to run, and its typed settings
    ("models",),  # encoder families, masking, objectives' targets, heads, checkpoint import
    ("data",),  # corpus, tokenizer, instances, tasks, features (static masking uses models.masking)
    ("evaluation",),  # scoring, metrics, health, tables, plots, claims
    ("training",),  # the engine and the two loops: data in, models trained, evaluation's scores
    ("estimate", "rehearsal", "rehearsal_report", "workflow", "warm"),  # whole-config reports and the Snakemake glue
    ("preset_table",),  # the README's table of every preset's estimate and rehearsal
)
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}
# An in-function import of the package is allowed only with one of these on its line or the one before.
REASONS = ("torch-free", "keeps torch out")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement of ``module`` loads (a submodule named in
    ``from package import name`` counts as that submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    if target not in MODULES:
        return []
    return [f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target for alias in node.names]


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for each of ``module``'s package imports."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((target, child.lineno, in_function) for target in resolve(module, child))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 1 else None


def graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in imports(module) if target != module} for module in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if m != "bert_ablation" and layer(m) is None]
    assert not unplaced, f"place these in LAYERS (and in docs/architecture.md): {unplaced}"


def test_the_package_imports_have_no_circle():
    assert cycles(graph()) == []


def test_no_import_goes_up_the_layers():
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}), line {line}"
              for module in MODULES for target, line, _ in imports(module)
              if layer(target) is not None and layer(module) is not None and layer(target) > layer(module)]
    assert not upward, "\n".join(upward)


def test_in_function_imports_say_they_keep_torch_out():
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for target, line, in_function in imports(module):
            said = " ".join(lines[max(0, line - 2): line])
            if in_function and not any(reason in said for reason in REASONS):
                unexplained.append(f"{module}:{line} imports {target} inside a function")
    assert not unexplained, ("import at the top, or say on the line (or the one before) that it keeps torch "
                             "out:\n" + "\n".join(unexplained))


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_a_circle_is_found(edges, expected):
    assert cycles(edges) == expected


def test_the_schema_offers_exactly_the_encoder_families():
    """facts.architectures names the families; the schema's enum lists the same names."""
    architecture = schema.schema()["definitions"]["model"]["properties"]["architecture"]
    assert architecture["enum"] == list(ARCHITECTURES)
