"""Forecasting benchmark on the embedded co2 series: the default window model against the baselines.

Trains the model (``linear_window``, NLinear, by default) with ``--seeds`` seeds under the
protocol (time split 208/208, encoder fitted on train, context 104, 52 steps at once) and
prints, per horizon, the test MASE of the model as mean and spread (min..max) over the seeds
next to every baseline's, which does not depend on the seed.

    python bench/forecast.py [--model linear_window|window_mlp|gru] [--seeds 3] [--epochs 40] [--lr 3e-3]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from trainflow.components.forecasting import GRUConfig, LinearWindowConfig, WindowMLPConfig
from trainflow.forecasting.evaluate import evaluate_forecasts
from trainflow.forecasting.experiment import prepare_forecast, torch_predict, train_forecaster
from trainflow.forecasting.series import read_co2

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"linear_window": LinearWindowConfig(), "window_mlp": WindowMLPConfig(), "gru": GRUConfig()}
HORIZONS = (4, 13, 52)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="linear_window")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    series = read_co2(ROOT)
    prepared = prepare_forecast(series)
    runs = []
    for seed in range(args.seeds):
        trainer = train_forecaster(prepared, MODELS[args.model], epochs=args.epochs, lr=args.lr, seed=seed)
        metrics, _ = evaluate_forecasts(
            series.values,
            series.dates,
            prepared.encoder,
            torch_predict(trainer.model),
            train_end=prepared.train_end,
            val_end=prepared.val_end,
            context=prepared.context,
            horizons=HORIZONS,
        )
        runs.append(metrics["test"])
    names = [name for name in runs[0]["h4"] if name != "model"]
    print(f"test MASE, {args.model} over {args.seeds} seeds (mean, min..max) and the baselines")
    print(f"{'horizon':8} {'model':>22} " + " ".join(f"{name:>20}" for name in names))
    for horizon in HORIZONS:
        key = f"h{horizon}"
        values = [run[key]["model"]["mase"] for run in runs]
        model = f"{statistics.mean(values):.3f} ({min(values):.3f}..{max(values):.3f})"
        baselines = " ".join(f"{runs[0][key][name]['mase']:>20.3f}" for name in names)
        print(f"{key:8} {model:>22} {baselines}")


if __name__ == "__main__":
    main()
