"""Build hook: ship the registry, the notebooks and the smoke fixtures inside the wheel (``r3f_utils/_data``).

Everything else is in pyproject.toml. A checkout keeps using its own top-level files (r3f_utils/package_data.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (source in the checkout, destination under r3f_utils/_data)
PACKAGE_DATA = (
    ("results_registry.yaml", "results_registry.yaml"),
    ("notebooks", "notebooks"),
    ("tests/fixtures/glue", "fixtures/glue"),
    ("tests/fixtures/xnli", "fixtures/xnli"),
    ("tests/fixtures/summarization", "fixtures/summarization"),
    ("tests/fixtures/sft", "fixtures/sft"),
)


class BuildPyWithData(build_py):
    """build_py that also copies PACKAGE_DATA into the built package (not for editable installs)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "r3f_utils" / "_data"
        shutil.rmtree(target, ignore_errors=True)  # no stale notebooks from an earlier build
        for source, dest in PACKAGE_DATA:
            src, dst = ROOT / source, target / dest
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildPyWithData})
