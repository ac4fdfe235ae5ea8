"""The layers hold: no import runs upward, and the node reaches the pipeline only via its contract.

Every ``import`` / ``from ... import`` statement of the product packages is read from the source
(an AST scan, so imports inside functions count too); nothing is imported to check.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What each top-level package may import from the project's other top-level packages.
ALLOWED: dict[str, set[str]] = {
    "pipeline": set(),
    "domain_client": set(),
    "app": {"domain_client", "pipeline.contract"},
    "emulator": set(),
}
PROJECT_PACKAGES = {"app", "bench", "demo", "domain_client", "emulator", "pipeline", "tests"}
#: Known exceptions, file by file: the viewer (#16) frames and renders splats inside the node
#: process with the pipeline's renderer. Listed exactly so that no new one slips in; moving the
#: viewer's pipeline side behind the contract (or into the child) empties this.
KNOWN_EXCEPTIONS: dict[str, set[str]] = {
    "app/viewer/scenes.py": {"pipeline.render", "pipeline.view"},
    "app/api/routes/viewer.py": {"pipeline.view"},
}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``path`` (``from a import b`` → ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(package: str) -> list[str]:
    """Imports of ``package`` that reach another project package outside :data:`ALLOWED`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top == package or top not in PROJECT_PACKAGES:
                continue
            allowed = ALLOWED[package] | KNOWN_EXCEPTIONS.get(str(path.relative_to(ROOT)), set())
            if not any(module == a or module.startswith(f"{a}.") for a in allowed):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_upward_or_sideways(package: str) -> None:
    assert violations(package) == []


def project_imports(path: Path) -> set[str]:
    return {m for _, m in imported_modules(path) if m.split(".")[0] in PROJECT_PACKAGES}


def test_the_contract_imports_nothing_of_the_project_but_the_child_environment() -> None:
    assert project_imports(ROOT / "pipeline" / "contract.py") == {
        "pipeline.environment.SECRET_VARIABLES",
        "pipeline.environment.child_environment",
    }
    assert project_imports(ROOT / "pipeline" / "environment.py") == set()


def test_the_app_reaches_the_pipeline_only_through_the_contract() -> None:
    from_pipeline = {
        module.rsplit(".", 1)[0] if module.startswith("pipeline.contract.") else module
        for path in (ROOT / "app").rglob("*.py")
        if str(path.relative_to(ROOT)) not in KNOWN_EXCEPTIONS
        for _, module in imported_modules(path)
        if module.split(".")[0] == "pipeline"
    }
    assert from_pipeline == {"pipeline.contract"}


def test_the_known_exceptions_are_still_needed() -> None:
    for name, allowed in KNOWN_EXCEPTIONS.items():
        used = {m for _, m in imported_modules(ROOT / name)}
        assert all(any(m.startswith(f"{a}.") for m in used) for a in allowed), name


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from pipeline.train import loop\n    import app.main\n")
    assert list(imported_modules(source)) == [(2, "pipeline.train.loop"), (3, "app.main")]
