"""The extension guide is a walk-through that works: its module and its shell commands,
run as written (on a free port, in a scratch copy of the project folder)."""
from __future__ import annotations

import re
import subprocess

import pytest

from experiments.server import ROOT, free_port


@pytest.mark.slow
def test_the_guide_runs_as_written(tmp_path):
    text = (ROOT / "docs" / "extensions.md").read_text()
    module = re.search(r"```python\n(# extensions/label_balance.py\n.*?)```", text, re.S).group(1)
    steps = re.findall(r"```sh\n(.*?)```", text, re.S)
    walkthrough = [s for s in steps if "WEBFL_PORT" in s]
    assert len(walkthrough) == 3, walkthrough  # start, name it in a task, see it run
    work = tmp_path / "project"
    (work / "extensions").mkdir(parents=True)
    (work / "extensions" / "label_balance.py").write_text(module)
    (work / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    script = "set -e\n" + "\n".join(walkthrough)
    script = script.replace("WEBFL_PORT=8000", f"WEBFL_PORT={port}").replace("/tmp/webfl-guide", str(tmp_path / "data"))
    out = subprocess.run(["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=600)
    log = (tmp_path / "data.log").read_text() if (tmp_path / "data.log").exists() else ""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + log
    assert '"name":"label_balance"' in out.stdout.replace(" ", "")                      # the PATCH took it
    assert "1 participants finished, 0 failed, 0 with extension errors" in out.stdout
    assert '"classes_present"' in out.stdout and '"balance"' in out.stdout             # its numbers arrived
