"""What `trainflow predict` costs over a hand-written scoring loop, and onnxruntime against PyTorch.

Scores N rows (default 1,000,000: the embedded digits' features repeated) stored as parquet
with the model of ``--model`` (default: a seeded MLP 64-256-256-10 in a temporary digits
project prepared by the real prepare and fit-encoder stages) in four ways, each in a process
of its own so that its peak memory is its own:

  (a) a hand-written loop: torch.load(weights_only) of the same snapshot, the same model
      class, the fitted encoder's mean and std, the whole file read with pyarrow, the same
      batches, softmax and argmax, the same output columns written as parquet;
  (b) trainflow: ``load_model`` + ``score_file`` (what ``trainflow predict`` runs after
      parsing its arguments): validation by the training schema, chunks, the same batches;
  (c) PyTorch alone on the encoded rows, batch by batch (model time only);
  (d) onnxruntime on the same rows and batches, with the exported ONNX file (encoder inside).

Times exclude process start-up and imports; each way runs ``--repeats`` times, interleaved,
and the median counts. Peak memory is the process's peak RSS minus its RSS after the imports.
Prints the ratios against their targets: throughput (b)/(a) >= 0.9, peak memory of (b) <=
2 x (input file + model file), and (d)/(c) for information.

    python bench/predict.py [--rows 1000000] [--repeats 3] [--model models/best.pt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("loop", "trainflow", "torch", "onnx")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    """The current resident set size in MiB (Linux /proc)."""
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """This process's peak RSS in MiB: VmHWM, not ru_maxrss, which a child inherits from the
    driver that forked it (so it would report the driver's size)."""
    return _status_mb("VmHWM")


# -- the ways, each run in its own process ----------------------------------------------------


def way_loop(model_path: Path, input_path: Path, output: Path, batch: int) -> int:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq
    import torch

    from trainflow import registry
    from trainflow.config import import_builtins

    import_builtins()
    snapshot = torch.load(model_path, map_location="cpu", weights_only=True)
    config = snapshot["config"]
    info = snapshot["info"]
    entry = registry.models.get(config["model"]["name"])
    model_config = entry.config_class(**{k: v for k, v in config["model"].items()})
    shape = tuple(info["image_shape"]) if info.get("image_shape") else None
    model = entry.factory(model_config, len(info["feature_columns"]), len(info["classes"]), shape)
    model.load_state_dict(snapshot["model_state"])
    model.eval()
    encoder = json.loads((model_path.parent.parent / "data" / "encoders" / "encoder.json").read_text())
    mean, std = (np.asarray(encoder["state"][key]) for key in ("mean", "std"))
    table = pq.read_table(input_path, columns=info["feature_columns"])
    x = np.column_stack([column.to_numpy() for column in table.columns]).astype(np.float32)
    del table
    encoded = torch.from_numpy(((x.astype(np.float64) - mean) / std).astype(np.float32))
    with torch.inference_mode():
        logits = torch.cat([model(encoded[i : i + batch]) for i in range(0, len(encoded), batch)])
    probabilities = torch.softmax(logits, dim=1).numpy()
    labels = np.asarray(info["classes"])
    frame = pd.DataFrame({"row": np.arange(len(x)), "prediction": labels[logits.argmax(dim=1).numpy()]})
    for i, label in enumerate(info["classes"]):
        frame[f"prob_{label}"] = probabilities[:, i]
    frame.to_parquet(output, index=False)
    return len(frame)


def way_trainflow(model_path: Path, input_path: Path, output: Path, batch: int) -> int:
    from trainflow.predict import load_model
    from trainflow.score_files import score_file

    return score_file(load_model(model_path, batch_size=batch), input_path, output).rows


def _encoded(model_path: Path, input_path: Path) -> tuple[Any, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    from trainflow.predict import load_model

    predictor = load_model(model_path)
    table = pq.read_table(input_path, columns=predictor.feature_columns)
    x = np.column_stack([column.to_numpy() for column in table.columns]).astype(np.float32)
    return predictor, x


def way_torch(model_path: Path, input_path: Path, output: Path, batch: int, prepared: Any = None) -> int:
    import torch

    predictor, x = prepared
    encoded = torch.from_numpy(predictor.encoder.encode(x))
    with torch.inference_mode():
        for i in range(0, len(encoded), batch):
            predictor.model(encoded[i : i + batch])
    return len(x)


def way_onnx(model_path: Path, input_path: Path, output: Path, batch: int, prepared: Any = None) -> int:
    import onnxruntime

    _, x = prepared
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(output), options, providers=["CPUExecutionProvider"])
    for i in range(0, len(x), batch):
        session.run(["outputs"], {"features": x[i : i + batch]})
    return len(x)


def worker(way: str, model_path: Path, input_path: Path, output: Path, batch: int) -> None:
    """Run one way and print ``{"seconds", "rows", "memory_mb"}`` as JSON."""
    import numpy  # noqa: F401  the imports are start-up, not work
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import torch

    import trainflow.models.snapshot
    import trainflow.predict
    import trainflow.predictor
    import trainflow.results.evaluate
    import trainflow.score_files  # noqa: F401
    from trainflow.config import import_builtins

    import_builtins()
    torch.set_num_threads(1)
    prepared = None
    if way in ("torch", "onnx"):
        import onnxruntime  # noqa: F401

        prepared = _encoded(model_path, input_path)  # reading the rows is not model time
    baseline = rss_mb()
    start = time.perf_counter()
    if way == "loop":
        rows = way_loop(model_path, input_path, output, batch)
    elif way == "trainflow":
        rows = way_trainflow(model_path, input_path, output, batch)
    elif way == "torch":
        rows = way_torch(model_path, input_path, output, batch, prepared)
    else:
        rows = way_onnx(model_path, input_path, output, batch, prepared)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": rows, "memory_mb": peak_mb() - baseline}))


# -- the driver -------------------------------------------------------------------------------


def make_project(folder: Path) -> Path:
    """A digits project (real prepare and fit-encoder) with a seeded, untrained default MLP."""
    import torch

    from trainflow.config import resolve
    from trainflow.data.prepare import read_info
    from trainflow.models.snapshot import build_model, save_model_snapshot
    from trainflow.paths import ProjectPaths
    from trainflow.stages import fit_encoder, prepare

    (folder / "data" / "raw").mkdir(parents=True)
    (folder / "data" / "raw" / "digits.csv.gz").write_bytes((ROOT / "data" / "raw" / "digits.csv.gz").read_bytes())
    config = resolve({"train": {"threads": 1}}, source="bench")
    paths = ProjectPaths(folder)
    prepare.run(config, paths)
    fit_encoder.run(config, paths)
    info = read_info(paths.prepared)
    torch.manual_seed(0)
    save_model_snapshot(paths.models / "best.pt", build_model(config, info), config, info)
    return paths.models / "best.pt"


def make_input(model_path: Path, rows: int, path: Path) -> None:
    import gzip

    import numpy as np
    import pandas as pd

    from trainflow.predict import load_model

    features = load_model(model_path).feature_columns
    with gzip.open(ROOT / "data" / "raw" / "digits.csv.gz", "rt") as file:
        raw = pd.read_csv(file, header=None).iloc[:, : len(features)]
    repeated = np.resize(raw.to_numpy(dtype=np.int64), (rows, len(features)))
    pd.DataFrame(repeated, columns=features).to_parquet(path, index=False)


def run_way(way: str, model: Path, data: Path, output: Path, batch: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", way, "--model", str(model), "--input", str(data)]
    command += ["--output", str(output), "--batch", str(batch)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{way} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="a models/best.pt (default: a seeded MLP on digits)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the model's training one)")
    parser.add_argument("--worker", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, Path(args.model), Path(args.input), Path(args.output), args.batch)
        return

    with tempfile.TemporaryDirectory(prefix="trainflow-bench-predict-") as tmp:
        folder = Path(tmp)
        model = Path(args.model) if args.model else make_project(folder / "project")
        from trainflow.export import export_model
        from trainflow.predict import load_model

        predictor = load_model(model)
        batch = args.batch or predictor.batch_size
        data = folder / "input.parquet"
        make_input(model, args.rows, data)
        onnx_file = export_model(predictor, "onnx", folder / "model.onnx")
        outputs = {"loop": folder / "loop.parquet", "trainflow": folder / "trainflow.parquet"}
        outputs |= {"torch": folder / "unused", "onnx": onnx_file}
        results: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
        for _ in range(args.repeats):
            for way in WAYS:
                results[way].append(run_way(way, model, data, outputs[way], batch))

        import pandas as pd

        same = pd.read_parquet(outputs["loop"]).equals(pd.read_parquet(outputs["trainflow"]))
        median = {way: statistics.median(r["seconds"] for r in runs) for way, runs in results.items()}
        memory = {way: max(r["memory_mb"] for r in runs) for way, runs in results.items()}
        input_mb = data.stat().st_size / 2**20
        model_mb = model.stat().st_size / 2**20
        rows = args.rows
        print(f"rows {rows:,}, batch {batch}, input {input_mb:.1f} MiB parquet, model {model_mb:.2f} MiB, 1 thread")
        for way in WAYS:
            print(
                f"  {way:9s} median {median[way]:7.2f} s  {rows / median[way]:12,.0f} rows/s  "
                f"peak +{memory[way]:7.1f} MiB"
            )
        ratio = median["loop"] / median["trainflow"]
        bound = 2 * (input_mb + model_mb)
        print(f"trainflow / hand-written loop throughput: {ratio:.3f} (target >= 0.9)")
        table_mb = rows * len(predictor.feature_columns) * 8 / 2**20  # the input as int64/float64 columns
        print(f"trainflow peak memory: {memory['trainflow']:.1f} MiB vs 2 x (input + model) = {bound:.1f} MiB on disk")
        print(f"  and vs 2 x (input table in memory {table_mb:.0f} MiB + model) = {2 * (table_mb + model_mb):.0f} MiB")
        print(f"hand-written loop peak memory: {memory['loop']:.1f} MiB")
        print(f"onnxruntime / PyTorch throughput: {median['torch'] / median['onnx']:.3f}")
        print(f"trainflow output identical to the loop's: {same}")


if __name__ == "__main__":
    main()
