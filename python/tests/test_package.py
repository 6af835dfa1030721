"""The installed package: version, typing marker and stubs are shipped with it."""

import pathlib
import re

import echos


def test_version_matches_the_workspace():
    root = pathlib.Path(__file__).resolve().parents[2]
    cargo = (root / "Cargo.toml").read_text()
    m = re.search(r'\[workspace\.package\][^\[]*?version = "([^"]+)"', cargo, re.S)
    assert m is not None
    assert echos.__version__ == m.group(1)


def test_typing_marker_and_stubs_are_installed():
    pkg = pathlib.Path(echos.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_echos.pyi").is_file()


def _stub_names():
    import ast

    tree = ast.parse((pathlib.Path(echos.__file__).parent / "_echos.pyi").read_text())
    top, esn = set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        if isinstance(node, ast.ClassDef) and node.name == "ESN":
            esn = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
    return top, esn


def test_stubs_match_the_native_module():
    from echos import _echos

    top, esn = _stub_names()
    native = {n for n in dir(_echos) if not n.startswith("__")} | {"__version__"}
    assert native <= top, f"names without stubs: {native - top}"
    methods = {n for n in dir(echos.ESN) if not n.startswith("_")} | {"__init__", "__reduce__"}
    assert methods <= esn, f"ESN members without stubs: {methods - esn}"


def test_every_public_name_has_a_docstring():
    for name in echos.__all__:
        if name == "__version__":
            continue
        obj = getattr(echos, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        if isinstance(obj, type(echos)):  # a submodule: its functions too
            for sub in obj.__all__:
                f = getattr(obj, sub)
                if callable(f):
                    assert f.__doc__ and f.__doc__.strip(), f"{name}.{sub}"
    for name in dir(echos.ESN):
        if not name.startswith("_"):
            assert getattr(echos.ESN, name).__doc__, f"ESN.{name}"
