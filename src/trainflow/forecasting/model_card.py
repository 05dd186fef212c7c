"""The model card of a forecasting package: the model, the series, the protocol, and the
metrics of the model against every baseline at every horizon.

A pure function of plain values (like :mod:`trainflow.results.model_card`), so two packages
built from one run have the same card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainflow.config import Config, flatten, to_dict
from trainflow.forecasting.baselines import BASELINES
from trainflow.results.model_card import CODE_PROVENANCE, ModelSummary, exported_row, format_cell, markdown_table

FORECASTERS = ("model", *BASELINES)
SPANS = ("train", "val", "test")
METRICS = ("mae", "rmse", "smape", "mase")


def protocol_lines(config: Config, report: Mapping[str, Any]) -> list[str]:
    """The evaluation protocol, as followed by the evaluate stage (README states the same)."""
    dataset = config.dataset
    m = report.get("season_length", "m")
    horizons = ", ".join(str(h) for h in dataset.horizons)
    return [
        f"- Split by time, never shuffled: test is the last {dataset.test} steps, validation the "
        f"{dataset.val} before them, train the rest. The encoder (`{config.encoder.name}`: target "
        "scaling, season sin/cos and time features) is fitted on the train span only.",
        "- Missing values: inputs are forward-filled, with a missing-value indicator input; missing "
        "targets are left out of the loss and of every metric.",
        f"- The model sees the previous {dataset.context} steps and forecasts {dataset.forecast} steps at "
        f"once. For each horizon H ({horizons}) the origins are o = start + k*H while o + H <= end of the "
        "span; the forecast of steps o..o+H-1 is the first H steps of the forecast made from history "
        "before o (actuals up to o-1; no retraining).",
        f"- Metrics on the series' own scale over the observed targets: MAE, RMSE, sMAPE (percent) and "
        f"MASE, scaled by the in-sample seasonal-naive (m = {m}) MAE over the train span.",
        "- Baselines on the same origins and targets: `naive` (the last filled value before o), "
        f"`seasonal_naive` (the filled value {m} steps before each target), `seasonal_naive_drift` "
        f"(seasonal naive plus the difference of the means of the observed values of the last {m} and "
        f"the {m} before), `holt_winters` (additive trend and season, m = {m}, statsmodels; estimated "
        "once on the history before the span's first origin, then updated to each origin without "
        "re-estimation).",
    ]


def scores_table(scores: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """``horizon | forecaster | MAE | RMSE | sMAPE % | MASE`` rows of one span of eval.json."""
    rows = []
    for key in sorted(scores, key=lambda name: int(name.removeprefix("h"))):
        for name in (n for n in FORECASTERS if n in scores[key]):
            rows.append([key.removeprefix("h"), name, *(scores[key][name].get(metric) for metric in METRICS)])
    return markdown_table(["horizon", "forecaster", "MAE", "RMSE", "sMAPE %", "MASE"], rows)


def standing_lines(scores: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """Per horizon: the model's MASE against the best baseline's and Holt-Winters'."""
    lines = []
    for key in sorted(scores, key=lambda name: int(name.removeprefix("h"))):
        entry = scores[key]
        baselines = {n: entry[n]["mase"] for n in BASELINES if n in entry and entry[n].get("mase") is not None}
        model = entry.get("model", {}).get("mase")
        if not baselines or model is None:
            continue
        best = min(baselines, key=lambda name: baselines[name])
        verdict = "beats every baseline" if model < baselines[best] else "does not beat every baseline"
        holt_winters = "" if best == "holt_winters" else f"; holt_winters {format_cell(baselines.get('holt_winters'))}"
        lines.append(
            f"- H = {key.removeprefix('h')}: model MASE {format_cell(model)} {verdict} "
            f"(best: `{best}` {format_cell(baselines[best])}{holt_winters})."
        )
    return lines


def how_to_use(config: Config) -> list[str]:
    """How to forecast with this package (a test runs the snippet as written)."""
    dataset = config.dataset
    return [
        f"Forecast the {dataset.forecast} steps after a history of at least {dataset.context} steps, with the "
        "training file's date and value columns (missing values allowed), from the project root or with "
        "`load_model` pointed at this folder's upload (`s3://…/<experiment-id>/`):",
        "",
        "```python",
        "import trainflow",
        'model = trainflow.load_model("results")  # this package: weights, encoder, input schema',
        'print(model.forecast("history.csv"))  # date, lead, forecast (a DataFrame is accepted too)',
        "```",
        "",
        "From the shell: `trainflow predict history.csv --model results --output forecast.csv`; "
        "`trainflow export --format onnx|torchscript` writes the model on encoded windows, decoded forecasts out.",
    ]


def render_forecast_card(
    *,
    config: Config,
    experiment_id: str,
    model: ModelSummary,
    report: Mapping[str, Any],
    description: str,
    evaluation: Mapping[str, Any],
    train_metrics: Mapping[str, Any],
    runtime: Mapping[str, Any],
) -> str:
    """The card as markdown; ``report`` is data/prepared/report.json, ``evaluation`` eval.json."""
    settings = flatten(to_dict(config))
    dataset = config.dataset
    lines = [f"# Model card: {config.model.name} forecasting {dataset.name}", ""]
    lines += [f"Experiment id: `{experiment_id}` (hash of the resolved config, config.yaml in this package).", ""]
    lines += ["## Model", ""]
    lines += markdown_table(
        ["field", "value"],
        [
            ["architecture", model.name],
            ["trainable parameters", f"{model.parameters:,}"],
            ["weights", f"model.safetensors in this package ({model.snapshot} in the project that trained it)"],
            *exported_row(config, "encoded windows in, decoded forecasts out"),
            ["best epoch", model.epoch],
            ["inputs", f"{dataset.context} steps x the encoded features (encoder.json)"],
            ["outputs", f"{dataset.forecast} steps ahead, scaled (decode with encoder.json's mean and std)"],
            *[[key, settings[key]] for key in settings if key.startswith("model.") and key != "model.name"],
        ],
        settings=True,
    )
    lines += ["", "## How to use", "", *how_to_use(config)]
    lines += ["", "## Data", ""]
    lines += [
        f"Series `{dataset.name}`: {description} Source: `{report.get('dataset', {}).get('path', '?')}`; "
        f"{report.get('rows', {}).get('total', '?')} steps at frequency {report.get('frequency', '?')}, "
        f"season length {report.get('season_length', '?')}, {report.get('missing', '?')} missing values.",
        "",
    ]
    spans = report.get("spans", {})
    lines += markdown_table(
        ["span", "steps", "missing", "first", "last"],
        [
            [span, *(spans[span].get(k) for k in ("steps", "missing", "first", "last"))]
            for span in SPANS
            if span in spans
        ],
    )
    lines += ["", "## Evaluation protocol", "", *protocol_lines(config, report)]
    lines += ["", "## Metrics (test)", "", *scores_table(evaluation.get("test", {})), ""]
    lines += standing_lines(evaluation.get("test", {}))
    lines += ["", "## Metrics (validation)", "", *scores_table(evaluation.get("val", {}))]
    lines += ["", "## Training", ""]
    keys = [key for key in settings if key.startswith(("seed", "encoder.", "loss.", "train."))]
    lines += markdown_table(["parameter", "value"], [[key, settings[key]] for key in keys], settings=True)
    scalars = {key: value for key, value in flatten(dict(train_metrics)).items() if not isinstance(value, list)}
    if scalars:
        lines += ["", "Training summary (metrics/train.json):", ""]
        lines += markdown_table(["key", "value"], [[key, value] for key, value in scalars.items()])
    lines += ["", "## Environment", ""]
    lines += markdown_table(["component", "value"], [[key, value] for key, value in runtime.items()], settings=True)
    lines += ["", CODE_PROVENANCE]
    lines += ["", "## Intended use and limits", ""]
    lines += [
        f"- Forecasts of `{dataset.name}` up to {dataset.forecast} steps ahead from the previous "
        f"{dataset.context} steps; it has not been evaluated on any other series.",
        f"- The test metrics come from {spans.get('test', {}).get('steps', 'the last')} steps, one contiguous "
        "period: they carry sampling error and say nothing about regime changes after it.",
        "- The model was selected by the validation loss, so validation metrics are optimistic; quote test.",
        "- The forecasts are point forecasts: no intervals are estimated.",
    ]
    return "\n".join(lines) + "\n"
