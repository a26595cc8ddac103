"""The package layout: the runtime `squeezerface` lives in sdk/squeezerface/ and imports, every submodule
of it, without torch (nor onnx, litert_torch) and without any module of the repository-root tools (pruning/,
converters/) or of benchmarks/; `import squeezerface` works from the clone's parent folder; the offline tools
name their extra when it is missing; no test edits the import path to reach into the repository."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import squeezerface
from squeezerface.errors import EmbedderUnavailableError, MissingExtraError, SqueezerfaceError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sdk" / "squeezerface"

_BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {"torch", "torchvision", "onnx", "litert_torch"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked in this test: {name}")
    sys.meta_path.insert(0, Block())
    """
)

_IMPORT_ALL = _BLOCK + textwrap.dedent(
    """
    import importlib, json, pkgutil
    import squeezerface
    names = ["squeezerface"]
    for info in pkgutil.walk_packages(squeezerface.__path__, "squeezerface."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        names.append(info.name)
    tools = sorted(
        m for m in sys.modules if m.split(".")[0] in ("pruning", "converters", "benchmarks", "reliability")
    )
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"file": squeezerface.__file__, "modules": names, "tools": tools, "heavy": heavy}))
    """
)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_package_folder_is_named_as_imported() -> None:
    assert Path(squeezerface.__file__).resolve() == PACKAGE / "__init__.py"
    assert (PACKAGE / "py.typed").is_file()
    assert any((PACKAGE / "models").glob("*.onnx"))
    assert not (ROOT / "squeezerface").exists()
    assert not (ROOT / "sdk" / "__init__.py").exists()


def test_every_runtime_module_imports_without_torch_or_the_tools() -> None:
    done = _run(_IMPORT_ALL, ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve() == PACKAGE / "__init__.py"
    expected = {
        ".".join(("squeezerface", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
        if p.name != "__main__.py"
    }
    assert expected <= set(result["modules"])
    assert "squeezerface.bench.fuzz" in result["modules"]
    assert result["tools"] == []
    assert result["heavy"] == []


def test_import_from_the_clones_parent_folder() -> None:
    done = _run(
        "import squeezerface; print(squeezerface.__file__, squeezerface.FaceVerifier.__name__)", ROOT.parent
    )
    assert done.returncode == 0, done.stderr[-2000:]
    file, name = done.stdout.split()
    assert Path(file).resolve() == PACKAGE / "__init__.py"
    assert name == "FaceVerifier"


@pytest.mark.parametrize(("package", "extra"), [("pruning", "train"), ("converters", "convert")])
def test_tools_name_their_extra_when_it_is_missing(package: str, extra: str) -> None:
    code = _BLOCK + textwrap.dedent(
        f"""
        from squeezerface import MissingExtraError
        try:
            import {package}
        except MissingExtraError as exc:
            print(exc.extra, isinstance(exc, ImportError), str(exc))
        else:
            raise SystemExit("imported without torch")
        """
    )
    done = _run(code, ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{extra} True ")
    assert f'pip install -e ".[{extra}]"' in done.stdout


def test_missing_extra_error_is_exported_and_old_name_kept() -> None:
    assert squeezerface.MissingExtraError is MissingExtraError
    assert issubclass(MissingExtraError, SqueezerfaceError)
    assert issubclass(MissingExtraError, ImportError)
    assert issubclass(EmbedderUnavailableError, MissingExtraError)
    assert MissingExtraError("x", extra="train").extra == "train"
    assert EmbedderUnavailableError("x").extra is None


def test_the_wheel_holds_only_the_runtime() -> None:
    from setuptools import find_packages

    found = find_packages(str(ROOT / "sdk"), include=["squeezerface*"])
    assert "squeezerface" in found
    assert all(p == "squeezerface" or p.startswith("squeezerface.") for p in found)


def test_no_test_reaches_into_the_repository_through_sys_path() -> None:
    needle = "sys." + "path"  # spelled so that this file does not match itself
    offenders = [p.name for p in sorted((ROOT / "tests").glob("*.py")) if needle in p.read_text()]
    assert offenders == []
