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
