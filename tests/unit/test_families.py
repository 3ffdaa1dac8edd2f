"""The families' table and the typed parameters: every notebook's ``parameters`` cell equals its class, the
classes refuse bad input naming the parameter, and the reproduction machinery stays torch-free and acyclic.

Budget: ~5 s (no model; one subprocess import).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from r3f_utils.families import FAMILIES, family_of, get_family, notebook_parameters
from r3f_utils.params import (
    RENAMED,
    ComputeCostParams,
    GlueParams,
    GlueTraining,
    ProbingParams,
    SummarizationParams,
    XnliParams,
    parameters_source,
    resolve,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "r3f_utils"


def _parameters_cell(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    return cell.source


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_parameters_cell_equals_its_class(name) -> None:
    """Drift test: restamp with ``python -m r3f_utils.colab`` after changing r3f_utils/params.py."""
    import papermill

    family = FAMILIES[name]
    notebook = ROOT / "notebooks" / family.notebook
    assert _parameters_cell(notebook) == parameters_source(family.params), (
        f"{notebook.name}'s parameters cell differs from {family.params.__name__}: run python -m r3f_utils.colab")
    declared = {k: ast.literal_eval(v["default"]) for k, v in papermill.inspect_notebook(str(notebook)).items()}
    assert declared == family.defaults()  # the values papermill sees are the class's defaults


def test_every_notebook_has_a_family_and_every_family_a_notebook() -> None:
    notebooks = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks == {f.notebook for f in FAMILIES.values()}
    assert family_of("notebooks/glue.ipynb") is FAMILIES["glue"] and family_of("tests/toy.ipynb") is None
    with pytest.raises(ValueError, match="did you mean 'glue'"):
        get_family("gleu")


def test_smart_and_freelb_parameters_are_their_config_fields_with_the_same_defaults() -> None:
    """One spelling: parameter ``<method>_<field>`` is the method config's field ``<field>``, mechanically (no
    translation table), and its default is the config's."""
    from dataclasses import fields

    from r3f_utils import FreeLBConfig, R3FConfig, SMARTConfig
    from r3f_utils.experiments.glue import METHOD_CONFIGS, method_parameters

    assert {"smart": SMARTConfig, "freelb": FreeLBConfig} == METHOD_CONFIGS
    defaults = GlueParams().to_params()
    for method, config in METHOD_CONFIGS.items():
        names = {f.name for f in fields(config)}
        prefixed = [p for p in GlueTraining.model_fields if p.startswith(f"{method}_")]
        assert prefixed and method_parameters(method) == {p: p.removeprefix(f"{method}_") for p in prefixed}
        for param in prefixed:
            field = param.removeprefix(f"{method}_")
            assert field in names, f"{param}: {config.__name__} has no field {field!r}"
            assert defaults[param] == getattr(config(), field), param
    assert "ascent_steps" in {f.name for f in fields(SMARTConfig)} & {f.name for f in fields(FreeLBConfig)}
    assert (defaults["eps"], defaults["r3f_lambda"], defaults["noise_type"]) == (
        R3FConfig().eps, R3FConfig().r3f_lambda, R3FConfig().noise_type)


@pytest.mark.parametrize(("cls", "params", "error", "match"), [
    (GlueParams, {"lamda": 0.7}, TypeError, r"unknown glue parameter\(s\) \['lamda'\]; did you mean 'r3f_lambda'"),
    (GlueParams, {"learning_rate": "1e-5"}, ValueError,
     r"parameter learning_rate='1e-5' is invalid: a positive number \(a string is not a number"),
    (GlueParams, {"warmup_ratio": 1.0}, ValueError, r"warmup_ratio=1.0 is invalid: a fraction in \[0, 1\)"),
    (GlueParams, {"batch_size": 0}, ValueError, "batch_size=0 is invalid: a positive integer"),
    (GlueParams, {"batch_size": 8.5}, ValueError, "batch_size=8.5 is invalid"),
    (GlueParams, {"fp16": "yes"}, ValueError, "fp16='yes' is invalid: True or False"),
    (GlueParams, {"noise_type": "gauss"}, ValueError, r"noise_type='gauss' is invalid: choose one of \['uniform'"),
    (XnliParams, {"method": "std++"}, ValueError, r"method='std\+\+' is invalid: choose one of \['standard'"),
    (XnliParams, {"languages": "en"}, ValueError, "languages='en' is invalid"),
    (ProbingParams, {"cycles": 6}, ValueError, r"cycles=6 is invalid: an integer in 1..5"),
    (SummarizationParams, {"eval_steps": 0}, ValueError, "eval_steps=0 is invalid: None or a positive integer"),
    (SummarizationParams, {"dataset": "xsum"}, ValueError, r"dataset='xsum' is invalid: choose one of"),
])
def test_parameters_refuse_bad_input_naming_it(cls, params, error, match) -> None:
    with pytest.raises(error, match=match):
        resolve(cls, params)


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_old_spellings_are_refused_with_their_new_name_and_the_migration_note(old, new) -> None:
    pointer = rf"{old} was renamed {new} in registry schema 3 \(docs/registry\.md#migration-from-schema-2\)"
    with pytest.raises(TypeError, match=pointer):
        resolve(GlueParams, {old: 1})
    with pytest.raises(TypeError, match=pointer):
        resolve(ComputeCostParams, {old: 1})
    with pytest.raises(TypeError, match=pointer):  # papermill -p: in the notebook's globals
        notebook_parameters("glue", {**GlueParams().to_params(), old: 1})
    assert new in GlueParams.model_fields  # the new spelling is the one a notebook reads


def test_the_probing_study_is_study_and_a_study_as_experiment_is_refused() -> None:
    assert resolve(ProbingParams, {"study": "retention", "experiment": "fig5.r4f"}).study == "retention"
    with pytest.raises(ValueError, match=r"experiment='retention' is invalid: 'retention' is a probing study, not a "
                                         r"registry experiment: write study='retention' \(registry schema 3 renamed "
                                         r"the probing study experiment -> study, docs/registry\.md#migration-from"):
        resolve(ProbingParams, {"experiment": "retention"})


def test_the_migration_note_exists_and_lists_every_rename() -> None:
    text = (ROOT / "docs" / "registry.md").read_text(encoding="utf-8")
    assert "\n## Migration from schema 2\n" in text  # the anchor #migration-from-schema-2 of every pointer
    note = text.split("\n## Migration from schema 2\n", 1)[1].split("\n## ", 1)[0]
    for old, new in RENAMED.items():
        assert f"`{old}` | `{new}`" in note, old


def test_defaults_and_types_are_kept() -> None:
    cfg = resolve(GlueParams, {"learning_rate": 1, "dropout": None, "eval_steps": 5})
    assert cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)  # an int is a number
    assert (cfg.dropout, cfg.eval_steps, cfg.task, cfg.seed) == (None, 5, "rte", 1)
    namespace = {**GlueParams().to_params(), "task": "mrpc", "unrelated": 3}
    assert notebook_parameters("glue", namespace)["task"] == "mrpc"  # a notebook's globals(): only its names
    with pytest.raises(ValueError, match="method='std"):
        notebook_parameters("wall_time", {"method": "std++"})  # Figure 1 has no std++


def test_cell_literals_read_back() -> None:
    source = parameters_source(SummarizationParams)
    assert "learning_rate: float = 1.0e-3  # paper: 3e-5" in source and 'dataset: str = "cnn_dailymail"' in source
    namespace: dict = {}
    exec(source, namespace)
    assert {k: namespace[k] for k in SummarizationParams.model_fields} == SummarizationParams().to_params()


def test_machinery_imports_no_torch() -> None:
    code = ("import sys; import r3f_utils.families, r3f_utils.params, r3f_utils.registry, r3f_utils.checker, "
            "r3f_utils.runner, r3f_utils.describe, r3f_utils.plan, r3f_utils.train, r3f_utils.colab, "
            "r3f_utils.launchers; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _imports(path: Path) -> set[str]:
    """The r3f_utils modules ``path`` imports anywhere (functions too), as dotted names."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != module and m != "r3f_utils"}


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): _imports(p)
             for p in PACKAGE.rglob("*.py")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    lower = ("r3f_utils.params", "r3f_utils.recipes", "r3f_utils.families", "r3f_utils.registry")
    for node in lower:  # the table and the schemas never reach up into the torch side
        assert not any(m.startswith("r3f_utils.experiments") or m.startswith("r3f_utils.methods")
                       for m in graph[node]), (node, graph[node])


def test_registry_rows_are_validated_by_their_familys_class(tmp_path) -> None:
    from r3f_utils.registry import RegistryError, load_registry

    text = (ROOT / "results_registry.yaml").read_text(encoding="utf-8")
    assert "warmup_ratio: 0.0599" in text  # table2a.rte.roberta_large_std's own value
    (tmp_path / "notebooks").symlink_to(ROOT / "notebooks")
    (tmp_path / "r.yaml").write_text(text.replace("warmup_ratio: 0.0599", "warmup_ratio: 1.5", 1))
    with pytest.raises(RegistryError, match=r"row 'table2a\.\w+\.roberta_large_\w+': field 'parameters': parameter "
                                            r"warmup_ratio=1\.5 is invalid: a fraction in \[0, 1\)"):
        load_registry(tmp_path / "r.yaml")
