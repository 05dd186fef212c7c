"""Run a GitHub workflow job's steps here, as a runner would, to test what the workflow does.

GitHub's runners cannot be reached from the tests, so :func:`run_job` plays one: each ``run:``
step runs in order with ``bash --noprofile --norc -eo pipefail`` in ``workspace`` (a clone made
by the test, standing in for ``actions/checkout``), with the variables a runner sets
(``GITHUB_*``, ``RUNNER_TEMP``, ``CI``), a ``GITHUB_STEP_SUMMARY`` file shared by the job and a
fresh ``GITHUB_OUTPUT`` file per step whose ``name=value`` lines become
``steps.<id>.outputs``. ``${{ }}`` expressions and ``if:`` conditions are evaluated by
:mod:`tests.workflows.expressions`; a step runs after a failure only when its condition says so.

``uses:`` steps have no local action runtime: they are recorded with their evaluated ``with:``
inputs (the test checks them) and succeed, because their local equivalent is already there
(checkout: the clone; setup-python: the venv on PATH; artifact uploads and PR comments: nothing
to upload to). ``replace`` swaps a ``run:`` step, by id, for a local command (``None``: record
it as skipped), e.g. the step that pip-installs into what is here the tests' own venv.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.workflows.expressions import condition, interpolate

BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


@dataclass
class Step:
    """What became of one step: ``outcome`` is ``success``, ``failure`` or ``skipped``."""

    id: str
    name: str
    outcome: str
    kind: str  # run | uses | replaced | skipped
    output: str = ""
    uses: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Job:
    """The steps in order, the job summary markdown, and whether the job succeeded."""

    steps: list[Step]
    summary: str

    @property
    def succeeded(self) -> bool:
        return all(step.outcome != "failure" for step in self.steps)

    def step(self, id_: str) -> Step:
        return next(step for step in self.steps if step.id == id_)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {step.id} [{step.outcome}]\n{step.output}" for step in self.steps)


def load(path: Path) -> dict[Any, Any]:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as True
    return workflow


def parse_outputs(text: str) -> dict[str, str]:
    """A GITHUB_OUTPUT file: ``name=value`` lines and ``name<<DELIMITER`` ... ``DELIMITER`` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delimiter:
                    break
                body.append(item)
            outputs[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def _evaluated(values: Mapping[str, Any] | None, contexts: Mapping[str, Any]) -> dict[str, str]:
    return {str(key): interpolate(str(value), contexts) for key, value in (values or {}).items()}


def run_job(
    workflow_path: Path,
    job_name: str,
    workspace: Path,
    runner_temp: Path,
    github: Mapping[str, Any],
    vars_: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    replace: Mapping[str, str | None] | None = None,
) -> Job:
    """Run ``job_name`` of the workflow in ``workspace``; ``github`` is the github context.

    ``base_env`` is the machine's environment (PATH with the venv first); the runner's own
    variables are derived from ``github`` (``sha``, ``ref``, ``ref_name``, ``event_name``,
    ``repository``, ``run_id``, ``event``) and ``workspace``.
    """
    workflow = load(workflow_path)
    job = workflow["jobs"][job_name]
    runner_temp.mkdir(parents=True, exist_ok=True)
    summary = runner_temp / "step_summary.md"
    summary.write_text("")
    env_file = runner_temp / "github_env"
    env_file.write_text("")
    contexts: dict[str, Any] = {
        "github": dict(github),
        "vars": dict(vars_ or {}),
        "secrets": dict(secrets or {}),
        "runner": {"temp": str(runner_temp), "os": "Linux"},
        "steps": {},
        "env": {},
    }
    runner_env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_SHA": str(github.get("sha", "")),
        "GITHUB_REF": str(github.get("ref", "")),
        "GITHUB_REF_NAME": str(github.get("ref_name", "")),
        "GITHUB_EVENT_NAME": str(github.get("event_name", "")),
        "GITHUB_REPOSITORY": str(github.get("repository", "owner/trainflow")),
        "GITHUB_RUN_ID": str(github.get("run_id", "1")),
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_BASE_REF": str(github.get("base_ref", "")),
        "GITHUB_HEAD_REF": str(github.get("head_ref", "")),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ENV": str(env_file),
        "RUNNER_TEMP": str(runner_temp),
    }
    contexts["env"] = _evaluated(workflow.get("env"), contexts)
    contexts["env"].update(_evaluated(job.get("env"), contexts))
    status = "success"
    results: list[Step] = []
    for index, spec in enumerate(job["steps"]):
        step_id = str(spec.get("id", f"__{index}"))
        name = str(spec.get("name") or spec.get("uses") or spec.get("run", "").splitlines()[0])
        record: dict[str, Any] = {"outcome": "success", "conclusion": "success", "outputs": {}}
        contexts["steps"][step_id] = record
        if not condition(spec.get("if"), contexts, status):
            record.update(outcome="skipped", conclusion="skipped")
            results.append(Step(step_id, name, "skipped", "skipped"))
            continue
        step_env = {**contexts["env"], **_evaluated(spec.get("env"), {**contexts, "env": contexts["env"]})}
        if "uses" in spec:
            inputs = _evaluated(spec.get("with"), {**contexts, "env": step_env})
            results.append(Step(step_id, name, "success", "uses", uses=spec["uses"], inputs=inputs))
            continue
        script = interpolate(spec["run"], {**contexts, "env": step_env})
        kind = "run"
        if replace is not None and step_id in replace:
            if replace[step_id] is None:
                results.append(Step(step_id, name, "success", "replaced", output="(replaced: nothing to do here)"))
                continue
            script, kind = str(replace[step_id]), "replaced"
        output_file = runner_temp / f"github_output_{index}"
        output_file.write_text("")
        exported = parse_outputs(env_file.read_text())
        process_env = {**(base_env or os.environ), **runner_env, **exported, **step_env}
        process_env["GITHUB_OUTPUT"] = str(output_file)
        cwd = workspace / spec.get("working-directory", ".")
        result = subprocess.run(
            [*BASH, "-c", script], cwd=cwd, env=process_env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        outcome = "success" if result.returncode == 0 else "failure"
        outputs = parse_outputs(output_file.read_text())
        record.update(outcome=outcome, conclusion=outcome, outputs=outputs)
        results.append(Step(step_id, name, outcome, kind, output=result.stdout + result.stderr, outputs=outputs))
        if outcome == "failure" and not spec.get("continue-on-error"):
            status = "failure"
    return Job(results, summary.read_text())
