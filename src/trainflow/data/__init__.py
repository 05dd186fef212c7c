"""Data: registered datasets, their pandera schemas, seeded splits and the prepared parquet files.

``datasets`` loads and describes a raw file (config classes: trainflow.components.datasets),
``read`` turns a file into a raw frame, ``schemas`` says what a valid frame holds, ``validate``
checks a frame against its schema (a trusted frame or a short DataError report), ``split`` makes
the train/val/test row indices, and ``prepare`` writes and reads ``data/prepared/``.
"""
