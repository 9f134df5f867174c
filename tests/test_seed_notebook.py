"""examples/seed_walkthrough.ipynb runs top to bottom (nbclient) and its printed checks hold."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "seed_walkthrough.ipynb"


def _outputs(nb):
    streams, data = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stdout":
                streams.append(out.text)
            elif out.output_type == "error":
                raise AssertionError(f"{out.ename}: {out.evalue}")
            elif "data" in out:
                data.append(out["data"])
    return "".join(streams), data


def test_seed_walkthrough_notebook_runs_and_agrees_with_tensorflow(monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    text, data = _outputs(nb)
    diffs = re.findall(r"^case (\d) (d_x|d_w) (\S+) +vs TF: max \|diff\| = (\S+)$", text, re.M)
    ways = {(c, g, w) for c, g, w, _ in diffs}
    assert len(diffs) == len(ways) == 14  # 2 cases x (4 ways of d_x + 3 ways of d_w)
    assert {w for c, g, w in ways if g == "d_x"} == {
        "autodiff", "conv2d_of_dilated_full_padded_dy", "conv2d_backprop_input", "conv2d_transpose"
    }  # fmt: skip
    assert all(float(v) < 1e-10 for *_, v in diffs)
    checks = re.findall(r"^lab check (.*): (OK|MISMATCH)$", text, re.M)
    assert len(checks) == 12 and all(r == "OK" for _, r in checks)
    assert "explain_conv checks: OK" in text
    assert "graph d_x vs TF: max |diff| = 0.0" in text
    assert "height: i=8 k=3 s=2 d=2 pads=(1,2)" in text
    assert "  input heights giving output 4: 7, 8 -> conv2d_transpose" in text
    assert text.rstrip().endswith("ALL WAYS AGREE WITH TENSORFLOW")
    pages = [d["text/html"] for d in data if "<iframe srcdoc=" in d.get("text/html", "")]
    assert len(pages) == 2 and all("lab-data" in p for p in pages)
    svgs = [d["image/svg+xml"] for d in data if "image/svg+xml" in d]
    assert len(svgs) == 2 and all("conv2d_backprop_input" in s for s in svgs)
