"""Registry: the full paper registry, its number count, and one test per bad input (named error)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from r3f_utils.registry import (
    DEFAULT_REGISTRY,
    METRIC_NAMES,
    SCHEMA_VERSIONS,
    Claim,
    RegistryError,
    RegistryRow,
    check_metric_name,
    load_registry,
    read_registry,
    select_rows,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "registry"
PAPER_TABLES = Path("/work/shared/reference/paper_tables.md")
for candidate in (
    REPO / "shared" / "reference" / "paper_tables.md",
    REPO.parent / "shared" / "reference" / "paper_tables.md",
):
    if candidate.is_file():
        PAPER_TABLES = candidate

# Hand count of printed cells per table (a '-' is not a number; Table 1's "1 + S" cells count, at S = 1):
EXPECTED_NUMBERS = {
    "1": 4 * 3,  # 4 methods x (FP, BP, xFP)
    "2a": 7 + 7 + 6 + 9 + 9 + 9,  # STD, STD++ (no mm, no F1); FreeLB (no mm, F1, MRPC); SMART, R3F, R4F all 9
    "2b": 7 + 7 + 0 + 9 + 9 + 9,  # the same, FreeLB has no medians
    "3": 5 * 16,  # 5 models x (15 languages + Avg)
    "4": 9 + 9 + 9 + 6 + 6 + 9,  # 3 datasets x R1/R2/RL; ERNIE-GEN and ProphetNet have no Reddit TIFU
}


@pytest.fixture(scope="module")
def rows():
    return load_registry(DEFAULT_REGISTRY, check_notebooks=False)


def _cell_value(cell: str, s: int = 1) -> float:
    """A printed cell as a number; Table 1's formulas ``a + bS`` are evaluated at S = ``s``."""
    formula = re.fullmatch(r"(\d+) \+ (\d*)S", cell)
    if formula:
        return float(int(formula[1]) + int(formula[2] or 1) * s)
    return float(cell)


def _paper_numbers() -> dict[str, list[float]]:
    """Every printed cell of Tables 1-4, read from the reference markdown (Table 1 formulas at S = 1)."""
    text = PAPER_TABLES.read_text(encoding="utf-8")
    sections = {
        "1": r"## 1\. Table 1",
        "2a": r"### 2a\.",
        "2b": r"### 2b\.",
        "3": r"## 3\. Table 3",
        "4": r"## 4\. Table 4",
    }
    numbers: dict[str, list[float]] = {}
    for table, heading in sections.items():
        start = re.search(heading, text).end()
        lines = text[start:].splitlines()
        first = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
        block = []
        for ln in lines[first:]:
            if not ln.startswith("|"):
                break
            block.append(ln)
        values = []
        for ln in block[2:]:  # skip header and separator
            for cell in ln.strip("|").split("|")[1:]:  # skip the model/method column
                for part in cell.split("/"):
                    part = part.strip()
                    if part in ("-", ""):
                        continue
                    values.append(_cell_value(part))
        numbers[table] = values
    return numbers


def test_full_registry_loads_without_notebook_checks(rows):
    # + the released-code comparison rows, Table 1's formula at S = 2, 3, Figure 1's rows and Figures 3-5's rows
    # (one per study and GLUE method; no printed numbers), and the sft study beyond the paper (issue 20)
    beyond = ("released-code", "1-s", "fig1", "fig3", "fig4", "fig5", "sft (beyond the paper)")
    assert len([r for r in rows if r.table not in beyond]) == 101
    assert {r.table for r in rows} == {"1", "1-s", "2a", "2b", "3", "4", "fig1", "released-code",
                                       "fig3", "fig4", "fig5", "sft (beyond the paper)"}
    assert len([r for r in rows if r.table == "sft (beyond the paper)" and r.role == "target"]) == 8
    assert all(r.notebook and r.parameters for r in rows if r.role == "target")


@pytest.mark.skipif(not PAPER_TABLES.is_file(), reason=f"reference tables not found at {PAPER_TABLES}")
def test_registry_holds_every_printed_number(rows):
    paper = _paper_numbers()
    assert {t: len(v) for t, v in paper.items()} == EXPECTED_NUMBERS
    for table, values in paper.items():
        registered = [v for r in rows if r.table == table for v in r.metrics.values()]
        assert sorted(registered) == sorted(values), table
    assert sum(len(r.metrics) for r in rows if r.table in paper) == sum(EXPECTED_NUMBERS.values()) == 228
    assert all(v is None for r in rows if r.table.startswith("fig") for v in r.metrics.values())


def test_full_registry_with_notebook_checks():
    rows = load_registry(DEFAULT_REGISTRY, check_notebooks=False)
    missing = sorted(
        {r.notebook for r in rows if r.notebook and not (DEFAULT_REGISTRY.parent / r.notebook).is_file()}
    )
    if missing:
        pytest.skip(f"notebook(s) not written yet: {', '.join(missing)}")
    load_registry(DEFAULT_REGISTRY, check_notebooks=True)


def test_registry_notes_every_marked_uncertainty(rows):
    by_id = {r.id: r for r in rows}
    assert any("90.9" in n for n in by_id["table2a.mrpc.roberta_large_std"].notes)
    assert any("81.26" in n for n in by_id["table3.xnli.xlmr_large_r3f"].notes)
    assert any("Split unknown" in n for n in by_id["table4.reddit_tifu.bart_r3f"].notes)
    assert any("decoding" in n.lower() and "NOT FOUND" in n for n in by_id["table4.gigaword.bart_r3f"].notes)
    assert any("S = 1" in n for n in by_id["table1.smart"].notes)
    assert by_id["table1.smart"].printed["cost_xfp"] == "3 + 3S"
    assert "rougeLsum" in by_id["table4.cnn_dailymail.bart_r3f"].metrics


def test_table2_halves_share_an_experiment(rows):
    by_id = {r.id: r for r in rows}
    best, median = by_id["table2a.rte.roberta_large_r3f"], by_id["table2b.rte.roberta_large_r3f"]
    assert best.experiment == median.experiment == "table2.rte.roberta_large_r3f"
    assert (best.aggregation, median.aggregation) == ("max_of_10", "median_of_10")
    assert best.parameters["r3f_lambda"] == 0.7 and best.parameters["learning_rate"] == 1e-5


def test_smoke_parameters_leave_the_paper_scale_to_the_profile(rows):
    row = {r.id: r for r in rows}["table2a.rte.roberta_large_r3f"]
    smoke = row.parameters_for("smoke")
    assert "model_name" not in smoke and "max_updates" not in smoke
    assert smoke["task"] == "rte" and row.parameters_for("paper")["max_updates"] == 3120


def test_select_rows_globs(rows):
    assert len(select_rows(rows, ["table4.*"])) == 16
    assert {r.table for r in select_rows(rows, ["table2.rte.*"])} == {"2a", "2b"}  # experiment key
    assert select_rows(rows, None) == rows


def test_metric_names_in_one_place():
    assert {"accuracy_avg", "rougeLsum", "cost_xfp", "accuracy_sw"} <= set(METRIC_NAMES)
    with pytest.raises(ValueError, match="did you mean 'rougeLsum'"):
        check_metric_name("rougeLSum")


BAD = {  # fixture -> fragments the error must contain (row, field, problem)
    "bad_missing_field": ["row 'toy.bad'", "field 'aggregation'", "missing required field"],
    "bad_duplicate_id": ["row 'toy.bad'", "field 'id'", "duplicate id"],
    "bad_unknown_metric": [
        "row 'toy.bad'",
        "field 'metrics'",
        "unknown metric name 'acuracy'",
        "did you mean 'accuracy'",
    ],
    "bad_unknown_aggregation": [
        "field 'aggregation'",
        "unknown aggregation 'max_of_ten'",
        "did you mean 'max_of_10'",
    ],
    "bad_exponent_string": [
        "row 'toy.bad'",
        "field 'tolerance.accuracy'",
        "'1e-5' is a string",
        "write 1e-5",
    ],
    "bad_not_a_number": ["field 'metrics.accuracy'", "'ninety' (str) is not a number"],
    "bad_missing_notebook": ["row 'toy.bad'", "field 'notebook'", "nope.ipynb' does not exist"],
    "bad_undeclared_parameter": [
        "row 'toy.bad'",
        "field 'parameters.vaule'",
        "not declared by notebook",
        "did you mean 'value'",
    ],
    "bad_parameter_exponent_string": ["field 'parameters.value'", "'1e-5' is a string", "write 1e-5"],
    "bad_no_common_parameters": ["no_common_parameters.ipynb", "does not declare the common parameter 'experiment'"],
    "bad_unknown_field": ["field 'tolerence'", "unknown field", "did you mean 'tolerance'"],
    "bad_experiment_mismatch": ["row 'toy.bad2'", "field 'parameters'", "shares experiment 'toy.shared'"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_registry_input_fails_with_named_error(name):
    with pytest.raises(RegistryError) as info:
        load_registry(FIXTURES / f"{name}.yaml")
    message = str(info.value)
    for fragment in BAD[name]:
        assert fragment in message, f"{fragment!r} not in {message!r}"


GOOD_ROW = {"id": "toy.bad", "table": "toy", "task": "toy",
            "dataset": {"hub_id": "toy/none", "config": None, "split": "validation"}, "model": "none",
            "method": "standard", "role": "target", "metrics": {"accuracy": 50.0}, "aggregation": "single",
            "tolerance": 0.5, "notebook": "toy.ipynb", "parameters": {"value": 50.0}}
BAD_ROWS = {  # a change to a good row -> what the error must say: the field, the problem, the fix
    "unknown dataset key": ({"dataset": {"hub_id": "toy/none", "split": "validation", "confg": "x"}},
                            "field 'dataset.confg': unknown key; did you mean 'config'?"),
    "empty split": ({"dataset": {"hub_id": "toy/none", "split": ""}},
                    "field 'dataset.split': expected a split name or a list of them, got ''"),
    "metrics not a mapping": ({"metrics": [50.0]},
                              "field 'metrics': expected a non-empty mapping metric name -> number, got [50.0]"),
    "infinite metric": ({"metrics": {"accuracy": float("inf")}},
                        "field 'metrics.accuracy': inf is not a finite number"),
    "negative tolerance": ({"tolerance": {"accuracy": -0.5}}, "field 'tolerance.accuracy': -0.5 is negative"),
    "tolerance of another metric": ({"tolerance": {"acuracy": 0.5}}, "field 'tolerance': tolerance for 'acuracy', "
                                    "which is not among the metrics; did you mean 'accuracy'?"),
    "no tolerance for a metric": ({"metrics": {"accuracy": 50.0, "f1": 40.0}, "tolerance": {"accuracy": 0.5}},
                                  "field 'tolerance': no tolerance for metric 'f1'"),
    "unknown role": ({"role": "targett"}, "field 'role': unknown role 'targett'; did you mean 'target'?"),
    "a runner's parameter": ({"parameters": {"seed": 3}},
                             "field 'parameters': 'seed' is injected by the runner; do not set it in the registry"),
    "nested quoted number": ({"parameters": {"values": [1.0, "1.0e-5"]}},
                             "field 'parameters.values[1]': '1.0e-5' is a string, not a number (it is quoted); "
                             "write 1.0e-5"),
    "zero seeds": ({"smoke": {"seeds": 0}}, "field 'smoke.seeds': expected a whole number >= 1, got 0"),
    "boolean seeds": ({"smoke": {"seeds": True}}, "field 'smoke.seeds': expected a whole number >= 1, got True"),
    "unknown section key": ({"smoke": {"seed": 2}}, "field 'smoke.seed': unknown key; did you mean 'seeds'?"),
    "section not a mapping": ({"cpu": [1]}, "field 'cpu': expected a mapping with parameters, expected, "
                                             "tolerance, seeds, got [1]"),
    "pin without tolerance": ({"smoke": {"expected": {"accuracy": 50.0}}},
                              "field 'smoke.tolerance': required when expected is given"),
    "pin of another metric": ({"smoke": {"expected": {"f1": 50.0}, "tolerance": 0.1}},
                              "field 'smoke.expected': pins ['f1'], which are not among the row's metrics"),
    "target without notebook": ({"notebook": None}, "field 'notebook': a target row needs the notebook"),
    "target without parameters": ({"parameters": ...}, "field 'parameters': a target row needs the parameters"),
    "reported with notebook": ({"role": "reported"}, "field 'notebook': a reported row is quoted from another "
                                                     "paper and has no notebook"),
    "reported figure": ({"role": "reported", "notebook": ..., "metrics": {"accuracy": None}},
                        "field 'metrics': a reported row quotes printed numbers; null (no number) is for target rows"),
    "cpu of a reported row": ({"role": "reported", "notebook": ..., "cpu": {"seeds": 1}},
                              "field 'cpu': only a target row (one this package runs) can have a cpu profile"),
    "bad id": ({"id": "toy bad"}, "row 'toy bad': field 'id': 'toy bad' may hold only letters, digits, '_', '.', '-'"),
    "notes not strings": ({"notes": ["ok", 3]}, "field 'notes[1]': expected a string or a list of strings, got 3"),
    "printed of another metric": ({"printed": {"f1": "1 + S"}}, "field 'printed': 'f1' is not among the row's metrics"),
    "no id": ({"id": ...}, "rows[0]: field 'id': missing required field"),
}


def _registry(tmp_path: Path, rows: list, claims: list | None = None) -> Path:
    path = tmp_path / "r.yaml"
    version = SCHEMA_VERSIONS[-1]  # the newest this reader reads
    path.write_text(yaml.safe_dump({"schema_version": version, "rows": rows, **({"claims": claims} if claims else {})}))
    return path


def _changed(**change: object) -> dict:
    return {k: v for k, v in {**GOOD_ROW, **change}.items() if v is not ...}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_is_refused_with_the_field_named(tmp_path, case):
    change, message = BAD_ROWS[case]
    with pytest.raises(RegistryError) as info:
        load_registry(_registry(tmp_path, [_changed(**change)]), check_notebooks=False)
    assert message in str(info.value), str(info.value)
    load_registry(_registry(tmp_path, [GOOD_ROW]), check_notebooks=False)  # the row without the change is fine


def test_every_problem_is_reported_together(tmp_path):
    """Problems of several fields of one row, of several rows, and of a claim come in one error."""
    rows = [_changed(metrics={"acuracy": 50.0}, role="targett"), _changed(id="toy.other", table="")]
    claims = [{"id": "toy.claim", "statement": "s", "source": "s", "metric": "accuracy", "aggregation": "single",
               "left": ["toy.other"], "relation": "<", "right": ["toy.reported"]}]
    reported = _changed(id="toy.reported", role="reported", notebook=..., parameters=...)
    with pytest.raises(RegistryError) as info:
        read_registry(_registry(tmp_path, [*rows, reported], claims), check_notebooks=False)
    errors = [e.split(": ", 1)[1] for e in info.value.errors]
    assert sorted(errors) == sorted([
        "claim 'toy.claim': field 'right[0]': experiment 'toy.reported' is a reported row: nothing runs it",
        "row 'toy.bad': field 'metrics': unknown metric name 'acuracy'; did you mean 'accuracy' or 'accuracy_zh' or "
        "'accuracy_vi'?",
        "row 'toy.bad': field 'role': unknown role 'targett'; did you mean 'target'? (known: target, reported)",
        "row 'toy.other': field 'table': expected a non-empty string, got ''",
    ])  # toy.other's claim operand is not flagged again: its row's problem is reported there


def test_rows_and_claims_share_ids(tmp_path):
    claims = [{"id": "toy.bad", "statement": "s", "source": "s", "metric": "accuracy", "aggregation": "single",
               "left": ["toy.bad"], "relation": "<", "right": ["toy.bad"]}]
    with pytest.raises(RegistryError, match=r"claim 'toy\.bad': field 'id': duplicate id"):
        read_registry(_registry(tmp_path, [GOOD_ROW], claims), check_notebooks=False)


def test_registry_schema_is_documented():
    """docs/registry.md's row and claim tables name exactly the fields of the classes that validate them."""
    text = (REPO / "docs" / "registry.md").read_text(encoding="utf-8")
    rows, claims = text.split("## Schema (one row)")[1].split("## Claims")
    for cls, table in ((RegistryRow, rows), (Claim, claims.split("Verdicts")[0])):
        documented = set(re.findall(r"^\| (`.*?`) \|", table, flags=re.M))
        names = {n for cell in documented for n in re.findall(r"`(\w+)`", cell)}
        assert names == set(cls.__pydantic_fields__), (cls.__name__, names ^ set(cls.__pydantic_fields__))


def test_unquoted_exponent_numbers_are_numbers(tmp_path):
    """YAML 1.2 floats: `1e-5` (no dot, unsigned exponent) is a number, as every reader of the file expects."""
    text = (FIXTURES / "bad_exponent_string.yaml").read_text().replace("tolerance: '1e-5'", "tolerance: 1e-5")
    (tmp_path / "r.yaml").write_text(text)
    (row,) = [r for r in load_registry(tmp_path / "r.yaml", check_notebooks=False) if r.id == "toy.bad"]
    assert row.tolerance == {"accuracy": 1e-5}


def test_notebook_checks_can_be_skipped():
    rows = load_registry(FIXTURES / "bad_missing_notebook.yaml", check_notebooks=False)
    assert rows[0].notebook.endswith("nope.ipynb")


def test_good_toy_registry_validates_with_notebooks():
    rows = load_registry(FIXTURES / "toy_registry.yaml")
    assert [r.id for r in rows][:3] == ["toy.single", "toy.best", "toy.median"]
    assert rows[0].smoke.expected == {"accuracy": 50.0}


def test_yaml_that_is_not_a_registry(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("- just a list\n")
    with pytest.raises(RegistryError, match="top-level 'rows:'"):
        load_registry(path)


def test_registry_tools_do_not_import_torch():
    code = (
        "import sys, r3f_utils.cli, r3f_utils.registry, r3f_utils.results, r3f_utils.checker, "
        "r3f_utils.runner, r3f_utils.report; from r3f_utils.cli import main; "
        "main(['validate', '--no-notebooks']);"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)
