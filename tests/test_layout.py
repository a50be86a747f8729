"""The source tree's shape: module sizes and how checks learn the platform.

The import layers and the absence of import circles are checked by import-linter (``lint-imports``,
contracts in pyproject.toml), which scripts/test.sh runs before pytest.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hvguard"
MAX_LINES = 800
PLATFORM_ATTRIBUTES = frozenset({"driver", "uri"})


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_800_lines() -> None:
    sizes = {p.relative_to(SRC).as_posix(): _lines(p) for p in SRC.rglob("*.py")}
    assert sizes, "no modules found"
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _is_hypervisor(node: ast.expr) -> bool:
    """``hv`` / ``hypervisor`` / ``….hypervisor``: the connection's facts (not, say, a log forward's
    stream driver)."""
    if isinstance(node, ast.Name):
        return node.id in {"hv", "hypervisor"}
    return isinstance(node, ast.Attribute) and node.attr == "hypervisor"


def _names_platform_attribute(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute) and n.attr in PLATFORM_ATTRIBUTES and _is_hypervisor(n.value)
        for n in ast.walk(node)
    )


def _platform_sniffs(tree: ast.AST) -> list[int]:
    """Lines that decide something from a URI or a driver name: comparisons and prefix/suffix tests."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and _names_platform_attribute(node)) or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "endswith", "upper", "lower", "casefold"}
            and _names_platform_attribute(node.func.value)
        ):
            lines.append(node.lineno)
    return lines


def test_no_check_learns_the_platform_from_a_uri_or_driver_name() -> None:
    """Checks decide from facts (``TargetFacts.platform`` and the neutral facts), so a second platform
    does not multiply URI and driver tests; URIs and drivers may only appear in messages and evidence."""
    found = {}
    for path in sorted((SRC / "checks").rglob("*.py")):
        lines = _platform_sniffs(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[path.relative_to(SRC).as_posix()] = lines
    assert not found, f"checks that test a URI or driver name: {found}"


def test_the_platform_sniff_detector_finds_one() -> None:
    sample = 'if (hv.driver or "").upper() == "QEMU" or ctx.hypervisor.uri.startswith("qemu"):\n    pass\n'
    assert _platform_sniffs(ast.parse(sample)) == [1, 1, 1]
    assert _platform_sniffs(ast.parse('if f.driver != "ptcp":\n    pass\n')) == []


def test_bench_scripts_import_what_exists() -> None:
    """Benchmarks run by hand, not in CI: a module they name must still exist after a move."""
    import importlib

    missing = []
    for path in sorted((SRC.parents[1] / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hvguard"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if not hasattr(module, alias.name) and importlib.util.find_spec(name) is None:
                        missing.append(f"{path.name}: {name}")
    assert not missing, f"bench scripts import names that do not exist: {missing}"
