"""The quickstart notebook runs top to bottom on its tiny setting, and is stored without
outputs."""

from __future__ import annotations

import pytest
from conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_on_the_tiny_setting(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ())]
    assert len(params) == 1
    # Like papermill: a cell after the parameters cell overrides them.
    nb.cells.insert(
        params[0] + 1,
        nbformat.v4.new_code_cell(f"TINY = True\nRUN = None\nWORK = {str(tmp_path / 'work')!r}"),
    )
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 3  # waveform, features, posteriors
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "tensorboard --logdir" in text and "--host 127.0.0.1" in text
    assert "hyp:" in text and "first label decoded" in text
    assert (tmp_path / "work" / "run_tiny" / "best.keras").is_file()
