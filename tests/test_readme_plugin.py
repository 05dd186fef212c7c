"""The README's plug-in example, copied literally into a project root, works with the
`trainflow` command and no PYTHONPATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINFLOW = str(Path(sys.executable).with_name("trainflow"))


def readme_plugin() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(block for block in blocks if block.startswith("# my_models.py"))


def test_my_models_in_the_project_root_is_imported_by_the_trainflow_command(tmp_path: Path) -> None:
    (tmp_path / "my_models.py").write_text(readme_plugin())
    (tmp_path / "params.yaml").write_text("imports: [my_models]\nmodel:\n  name: linear\n  bias: false\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [TRAINFLOW, "config", "show", "--flat"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert 'model.name="linear"' in result.stdout and "model.bias=false" in result.stdout
