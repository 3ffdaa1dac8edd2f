"""The shape every experiment notebook keeps: thin (no definitions or loops), committed without outputs, and a
``parameters`` cell that declares what the registry's rows set."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat

RUN_PARAMETERS = ("experiment", "profile", "seed", "output_dir")


def check_thin_notebook(notebook: Path, registry_parameters: Iterable[str]) -> dict[str, Any]:
    """Assert the notebook's shape; return papermill's view of its parameters and the notebook itself."""
    import papermill

    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])], "no cell tagged 'parameters'"
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    for cell in code:
        assert not any(
            line.lstrip().startswith(("def ", "class ", "for ", "while ")) for line in cell.source.splitlines()
        )
    declared = papermill.inspect_notebook(str(notebook))  # a comment papermill cannot parse hides a parameter
    missing = [p for p in (*registry_parameters, *RUN_PARAMETERS) if p not in declared]
    assert not missing, f"not declared by the parameters cell: {missing}"
    return {"declared": declared, "notebook": nb}
