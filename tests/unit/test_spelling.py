"""One spelling per concept (registry schema 3): the old spellings are refused with their new name and a pointer
to the migration note, in the registry; the parameter classes, papermill and ``--set`` are tested in
test_families.py and test_reliability_faults.py, the results.json schema in test_results.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from r3f_utils.families import FAMILIES
from r3f_utils.params import RENAMED, RENAMED_IN_FAMILY
from r3f_utils.registry import SCHEMA_VERSIONS, RegistryError, read_registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "results_registry.yaml"
POINTER = r"in registry schema 3 \(docs/registry\.md#migration-from-schema-2\)"


def _registry(tmp_path: Path, edit) -> Path:
    text = REGISTRY.read_text(encoding="utf-8")
    changed = edit(text)
    assert changed != text, "the edit found nothing to change"
    path = tmp_path / "results_registry.yaml"
    path.write_text(changed, encoding="utf-8")
    return path


def test_the_registry_reads_schema_3_only() -> None:
    assert SCHEMA_VERSIONS == (3,)
    assert REGISTRY.read_text(encoding="utf-8").count("\nschema_version: 3\n") == 1


@pytest.mark.parametrize("old", [1, 2])
def test_an_older_registry_is_refused_with_what_changed_and_the_migration_note(tmp_path, old) -> None:
    path = _registry(tmp_path, lambda t: t.replace("\nschema_version: 3\n", f"\nschema_version: {old}\n"))
    with pytest.raises(RegistryError) as info:
        read_registry(path, check_notebooks=False)
    (error,) = info.value.errors  # one message, not one per row
    assert f"schema_version {old} is not supported by this reader (it reads 3); schema 3 renamed parameters" in error
    for before, after in RENAMED.items():
        assert f"{before} -> {after}" in error
    assert "the probing study experiment -> study" in error and "docs/registry.md#migration-from-schema-2" in error


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda t: t.replace("smart_adv_lambda: 1.0", "smart_lambda: 1.0", 1),
     rf"row 'table2a\.mnli\.roberta_large_smart': field 'parameters\.smart_lambda': smart_lambda was renamed "
     rf"smart_adv_lambda {POINTER}"),
    (lambda t: t.replace("freelb_ascent_steps: 2,", "freelb_steps: 2,", 1),
     rf"field 'parameters\.freelb_steps': freelb_steps was renamed freelb_ascent_steps {POINTER}"),
    (lambda t: t.replace("freelb_adv_lr: 0.005}", "freelb_lr: 0.005}", 1),  # a smoke section (an anchor's)
     rf"field 'smoke\.parameters\.freelb_lr': freelb_lr was renamed freelb_adv_lr {POINTER}"),
    (lambda t: t.replace("smart_ascent_steps: 1,", "smart_steps: 1,", 1),
     rf"field 'parameters\.smart_steps': smart_steps was renamed smart_ascent_steps {POINTER}"),
    (lambda t: t.replace("study: retention,", "experiment: retention,", 1),  # a probing row's study, as schema 2
     rf"row 'fig5\.[a-z0-9_.]+': field 'parameters\.experiment': experiment was renamed study {POINTER}"),
    (lambda t: t.replace("parameters: {method: standard}", "parameters: {method: standard, row: x}", 1),
     rf"field 'parameters\.row': row was renamed experiment {POINTER}"),
])
def test_an_old_spelling_in_a_schema_3_registry_is_refused_with_its_new_name(tmp_path, edit, problem) -> None:
    path = _registry(tmp_path, edit)
    with pytest.raises(RegistryError, match=problem):
        read_registry(path, check_notebooks=False)


def test_the_rename_table_names_old_spellings_only() -> None:
    """No parameter class declares an old name; every new name is a parameter of some family."""
    declared = {name for family in FAMILIES.values() for name in family.params.model_fields}
    assert not set(RENAMED) & declared
    assert set(RENAMED.values()) <= declared
    for (family, old), new in RENAMED_IN_FAMILY.items():
        assert {old, new} <= set(FAMILIES[family].params.model_fields)  # the name stays, with another meaning


def test_profiles_and_noise_types_are_defined_once() -> None:
    """r3f_utils/constants.py holds them; every other module imports them, and a family's subset is derived."""
    from typing import get_args

    from r3f_utils import constants, params, registry
    from r3f_utils.methods import r3f

    assert params.PROFILES is constants.PROFILES and registry.PROFILES is constants.PROFILES
    assert r3f.NOISE_TYPES is constants.NOISE_TYPES and params.NOISE_TYPES is constants.NOISE_TYPES
    assert "neftune" in constants.NOISE_TYPES and params.GLUE_NOISE_TYPES == ("uniform", "normal", "none")
    for family in FAMILIES.values():
        for name, info in family.params.model_fields.items():
            if name == "noise_type":
                assert set(get_args(info.annotation)) <= set(constants.NOISE_TYPES), family.name
            if name == "profile":
                assert get_args(info.annotation) == constants.PROFILES, family.name
    definitions = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in (ROOT / "r3f_utils").rglob("*.py")
                   for line in path.read_text(encoding="utf-8").splitlines()
                   if line.startswith(("PROFILES =", "NOISE_TYPES =", "PROFILES: ", "NOISE_TYPES: "))]
    assert definitions == ["r3f_utils/constants.py: PROFILES = (\"smoke\", \"cpu\", \"paper\")",
                           "r3f_utils/constants.py: NOISE_TYPES = (\"uniform\", \"normal\", \"none\", \"neftune\")"]


def test_probe_parameters_are_their_probe_config_fields() -> None:
    """``probe_<field>`` is ProbeConfig's ``<field>`` (no translation table), with the same default."""
    from r3f_utils.experiments.probing import _PROBE_PARAMS
    from r3f_utils.methods.probing import ProbeConfig
    from r3f_utils.params import ProbingParams

    prefixed = {p for p in ProbingParams.model_fields if p.startswith("probe_")} - {"probe_tasks"}  # the study's
    assert set(_PROBE_PARAMS) == prefixed and all(_PROBE_PARAMS[p] == p.removeprefix("probe_") for p in prefixed)
    defaults = ProbingParams().to_params()
    for param, field in _PROBE_PARAMS.items():
        value = getattr(ProbeConfig(), field)
        assert defaults[param] == (list(value) if isinstance(value, tuple) else value), param
