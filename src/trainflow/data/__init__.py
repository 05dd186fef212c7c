"""Data: registered datasets, their pandera schemas, seeded splits and the prepared parquet files.

``datasets`` reads and describes a raw file, ``schemas`` says what a valid file holds,
``validate`` turns a file into a trusted frame or a short DataError report, ``split`` makes
the train/val/test row indices, and ``prepare`` writes and reads ``data/prepared/``.
"""
