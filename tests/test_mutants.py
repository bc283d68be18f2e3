"""The proofs stay proven: every mutant of tools/prove_checks.py still finds the code it breaks (a refactor that
moves the code must move the mutant too), names tests that exist, and the fast tier is caught on every run."""

from __future__ import annotations

import ast
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import prove_checks  # noqa: E402


@pytest.mark.parametrize("mutant", prove_checks.MUTANTS, ids=lambda m: m.name)
def test_every_mutant_finds_the_code_it_breaks_exactly_once(mutant):
    assert prove_checks.check_target(mutant) is None
    assert mutant.new != mutant.old and mutant.rule


@pytest.mark.parametrize("mutant", prove_checks.MUTANTS, ids=lambda m: m.name)
def test_every_mutant_names_tests_that_exist(mutant):
    for node in mutant.tests:
        file, _, name = node.partition("::")
        assert (ROOT / file).is_file(), node
        if name:
            defined = {f.name for f in ast.walk(ast.parse((ROOT / file).read_text())) if isinstance(f, ast.FunctionDef)}
            assert name in defined, node


def test_the_rules_the_product_promises_each_have_a_mutant():
    names = " ".join(m.name for m in prove_checks.MUTANTS)
    for rule in ("zip-code", "encoders", "split", "tiles", "price scale", "cache reads", "gate: the naive baseline",
                 "gate: the champion", "gate: drift", "champion alias", "lock", "Cached", "time limit", "Ctrl-C",
                 "run folder"):
        assert rule in names, rule


@pytest.mark.slow
def test_every_fast_mutant_is_caught(capsys):
    assert prove_checks.main(["--fast"]) == 0, capsys.readouterr().out
