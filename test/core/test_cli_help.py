"""`actjepa --version` and an example in every subcommand's --help."""
import argparse
import re
from pathlib import Path

import pytest

import actjepa_core
from actjepa_core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def subcommands(parser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from subcommands(child, (*path, name))


def test_version_matches_the_package_files(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"actjepa {actjepa_core.__version__}"
    setup_py = (ROOT / "setup.py").read_text()
    package_xml = (ROOT / "package.xml").read_text()
    assert f"version='{actjepa_core.__version__}'" in setup_py
    assert f"<version>{actjepa_core.__version__}</version>" in package_xml


def test_every_subcommand_help_shows_an_example():
    found = list(subcommands(build_parser()))
    assert len(found) >= 12  # collect ... bench paper, train-policy's three types
    for path, parser in found:
        text = parser.format_help()
        assert "examples:" in text, " ".join(path)
        example_lines = text.split("examples:", 1)[1].strip().splitlines()
        # each example is a whole command for this very subcommand
        assert any(re.match(rf"\s*actjepa {' '.join(path)}\b", line) for line in example_lines), \
            (path, example_lines)


def test_help_examples_parse(capsys):
    """The examples are real command lines: each parses with the current parser."""
    parser = build_parser()
    for path, sub in subcommands(parser):
        for line in sub.epilog.split("examples:", 1)[1].strip().splitlines():
            argv = line.split()[1:]
            if not sub._subparsers or len(argv) > len(path):
                parser.parse_args(argv)
