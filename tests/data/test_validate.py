"""Bad input files: each is a DataError whose message names the file, column, check and rows."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainflow.data import schemas
from trainflow.data.datasets import CsvConfig, CsvDataset, DigitsConfig, DigitsDataset
from trainflow.data.validate import validate
from trainflow.errors import DataError

REPO = Path(__file__).resolve().parents[2]
RAW_DIGITS = REPO / "data" / "raw" / "digits.csv.gz"
SOURCE = "data/raw/digits.csv.gz"


def digits_lines(count: int = 20) -> list[list[str]]:
    """The first ``count`` rows of the embedded digits file, as lists of fields."""
    lines = gzip.decompress(RAW_DIGITS.read_bytes()).decode().splitlines()[:count]
    return [line.split(",") for line in lines]


def write_digits(root: Path, rows: list[list[str]]) -> None:
    path = root / SOURCE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(",".join(row) + "\n" for row in rows).encode(), mtime=0))


def load_digits(root: Path) -> pd.DataFrame:
    return DigitsDataset(DigitsConfig(name="digits")).load(root)


def failure(root: Path) -> str:
    with pytest.raises(DataError) as caught:
        load_digits(root)
    error = caught.value
    # No pandas/pandera/gzip traceback is chained to the error.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return str(error)


def test_good_rows_load(tmp_path: Path) -> None:
    write_digits(tmp_path, digits_lines(20))
    frame = load_digits(tmp_path)
    assert frame.shape == (20, 65)
    assert (frame.dtypes == np.int64).all()


@pytest.mark.parametrize(
    ("value", "check", "shown"),
    [
        ("", "not_nullable (missing value)", "(nan)"),
        ("inf", "finite", "(inf)"),
        ("abc", "coerce_dtype('float64') (not a number)", "('abc')"),
        ("17", "in_range(0, 16)", "(17)"),
        ("-1", "in_range(0, 16)", "(-1)"),
        ("3.5", "integer", "(3.5)"),
    ],
)
def test_a_bad_pixel_is_reported_with_column_check_and_line(tmp_path: Path, value: str, check: str, shown: str) -> None:
    rows = digits_lines(20)
    rows[4][10] = value  # line 5, pixel_10
    write_digits(tmp_path, rows)
    message = failure(tmp_path)
    lines = message.splitlines()
    assert lines[0] == f"{SOURCE}: 1 check(s) failed"
    assert lines[1] == f"  pixel_10: {check} failed for 1 row(s): line 5 {shown}"


def test_a_label_outside_the_class_set_is_reported(tmp_path: Path) -> None:
    rows = digits_lines(20)
    rows[2][64] = "11"
    rows[7][64] = "12"
    write_digits(tmp_path, rows)
    assert failure(tmp_path).splitlines()[1] == "  label: isin(0..9) failed for 2 row(s): line 3 (11), line 8 (12)"


def test_one_run_reports_every_failed_check(tmp_path: Path) -> None:
    rows = digits_lines(20)
    rows[0][0] = "abc"
    rows[1][1] = "99"
    rows[2][1] = "98"
    rows[3][2] = ""
    rows[5][64] = "10"
    write_digits(tmp_path, rows)
    lines = failure(tmp_path).splitlines()
    assert lines[0] == f"{SOURCE}: 4 check(s) failed"
    assert lines[1:] == [
        "  pixel_0: coerce_dtype('float64') (not a number) failed for 1 row(s): line 1 ('abc')",
        "  pixel_1: in_range(0, 16) failed for 2 row(s): line 2 (99), line 3 (98)",
        "  pixel_2: not_nullable (missing value) failed for 1 row(s): line 4 (nan)",
        "  label: isin(0..9) failed for 1 row(s): line 6 (10)",
    ]


def test_many_failing_rows_show_a_few_examples(tmp_path: Path) -> None:
    rows = digits_lines(20)
    for row in rows:
        row[3] = "20"
    write_digits(tmp_path, rows)
    line = failure(tmp_path).splitlines()[1]
    assert line.startswith("  pixel_3: in_range(0, 16) failed for 20 row(s): line 1 (20), line 2 (20)")
    assert line.endswith(", ...")


def test_a_row_with_a_different_number_of_fields_names_its_line(tmp_path: Path) -> None:
    rows = digits_lines(20)
    rows[6].append("0")  # an extra field on line 7
    rows[9] = rows[9][:-1]  # a missing field on line 10
    write_digits(tmp_path, rows)
    assert failure(tmp_path) == f"{SOURCE}: 2 row(s) do not have the 65 fields expected: line 7 has 66, line 10 has 64"


def test_missing_and_extra_columns_are_reported_by_name() -> None:
    frame = pd.DataFrame(np.zeros((3, 65), dtype=np.int64), columns=[*schemas.DIGITS_FEATURES, "label"])
    frame = frame.drop(columns=["pixel_5"]).assign(extra=1)
    with pytest.raises(DataError) as caught:
        validate(frame, schemas.digits_schema(), "table.csv")
    assert str(caught.value).splitlines() == [
        "table.csv: 2 check(s) failed",
        "  columns: column_in_schema: unexpected column(s): extra",
        "  columns: column_in_dataframe: missing column(s): pixel_5",
    ]


def test_columns_out_of_order_are_reported() -> None:
    columns = [*schemas.DIGITS_FEATURES, "label"]
    frame = pd.DataFrame(np.zeros((3, 65), dtype=np.int64), columns=columns)
    with pytest.raises(DataError, match="column_ordered: column\\(s\\) out of order"):
        validate(frame[[columns[-1], *columns[:-1]]], schemas.digits_schema(), "table.csv")


def test_an_empty_frame_fails_the_non_empty_check() -> None:
    frame = pd.DataFrame({name: pd.Series([], dtype="int64") for name in [*schemas.DIGITS_FEATURES, "label"]})
    with pytest.raises(DataError, match="table: non_empty failed"):
        validate(frame, schemas.digits_schema(), "table.csv")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert failure(tmp_path) == f"{SOURCE}: file not found; check dataset.path (relative to the project root)"


def test_an_empty_file_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    (tmp_path / SOURCE).write_bytes(b"")
    assert failure(tmp_path) == f"{SOURCE}: file is empty (0 bytes)"


def test_an_empty_archive_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    (tmp_path / SOURCE).write_bytes(gzip.compress(b""))
    assert failure(tmp_path) == f"{SOURCE}: file is empty once decompressed"


def test_a_truncated_gzip_file_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    data = RAW_DIGITS.read_bytes()
    (tmp_path / SOURCE).write_bytes(data[: len(data) // 2])
    assert failure(tmp_path).startswith(f"{SOURCE}: truncated gzip file")


def test_a_corrupt_gzip_file_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    (tmp_path / SOURCE).write_bytes(np.random.default_rng(0).bytes(4096))
    assert failure(tmp_path).startswith(f"{SOURCE}: corrupt gzip file (Not a gzipped file")


def test_gzip_data_corrupted_inside_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    data = bytearray(RAW_DIGITS.read_bytes())
    data[100:120] = bytes(20)  # damage the compressed stream, keep the gzip header
    (tmp_path / SOURCE).write_bytes(bytes(data))
    assert failure(tmp_path).startswith(f"{SOURCE}: corrupt gzip file")


def test_binary_content_is_named(tmp_path: Path) -> None:
    (tmp_path / SOURCE).parent.mkdir(parents=True)
    (tmp_path / SOURCE).write_bytes(gzip.compress(b"\xff\xfe\x00binary"))
    assert "not UTF-8 text" in failure(tmp_path)


# --- a user's CSV with a header -----------------------------------------------------------------


def load_csv(root: Path, text: str, **fields: object) -> pd.DataFrame:
    (root / "table.csv").write_text(text)
    return CsvDataset(CsvConfig(name="csv", path="table.csv", **fields)).load(root)


def test_a_header_only_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^table.csv: file has a header but no data rows$"):
        load_csv(tmp_path, "a,b,label\n")


def test_an_empty_csv_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^table.csv: file is empty \(0 bytes\)$"):
        load_csv(tmp_path, "")


def test_a_missing_label_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,b,target\n1,2,0\n3,4,1\n")
    assert "columns: column_in_dataframe: missing column(s): label" in str(caught.value)


def test_a_missing_listed_feature_column_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing column\\(s\\): c"):
        load_csv(tmp_path, "a,b,label\n1,2,0\n3,4,1\n", feature_columns=("a", "c"))


def test_csv_lines_count_the_header(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,b,label\n1,2,0\n\n3,x,1\n")
    assert (
        str(caught.value).splitlines()[1]
        == "  b: coerce_dtype('float64') (not a number) failed for 1 row(s): line 4 ('x')"
    )


def test_a_label_outside_the_configured_classes_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,label\n1,0\n2,1\n3,2\n", classes=(0, 1))
    assert str(caught.value).splitlines()[1] == "  label: isin(0, 1) failed for 1 row(s): line 4 (2)"


def test_duplicate_header_names_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="duplicate column name\\(s\\) in the header: a"):
        load_csv(tmp_path, "a,a,label\n1,2,0\n")


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_a_csv_separated_by_another_character_is_read(tmp_path: Path, separator: str) -> None:
    rows = [["a", "b", "label"], ["1.5", "2", "0"], ["3", "4", "1"]]
    frame = load_csv(tmp_path, "".join(separator.join(row) + "\n" for row in rows))
    assert list(frame.columns) == ["a", "b", "label"]
    assert frame["a"].tolist() == [1.5, 3.0] and frame["label"].tolist() == [0, 1]


def test_lines_are_counted_in_a_semicolon_file_too(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a;b;label\n1;2;0\n3;x;1\n")
    assert (
        str(caught.value).splitlines()[1]
        == "  b: coerce_dtype('float64') (not a number) failed for 1 row(s): line 3 ('x')"
    )


def test_a_comma_file_with_semicolons_in_a_value_stays_comma_separated(tmp_path: Path) -> None:
    frame = load_csv(tmp_path, 'a,note,label\n1,"x;y;z",0\n2,"p;q",1\n', feature_columns=("a",))
    assert list(frame.columns) == ["a", "label"] and len(frame) == 2


def test_class_names_are_read_as_labels(tmp_path: Path) -> None:
    frame = load_csv(tmp_path, "a,label\n1,cat\n2,dog\n3,cat\n")
    assert frame["label"].tolist() == ["cat", "dog", "cat"]


def test_a_name_outside_the_configured_classes_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,label\n1,cat\n2,dog\n3,eel\n", classes=("cat", "dog"))
    assert str(caught.value).splitlines()[1] == "  label: isin(cat, dog) failed for 1 row(s): line 4 ('eel')"


def test_a_missing_name_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,label\n1,cat\n2,\n3,dog\n")
    assert "label: not_nullable (missing value) failed for 1 row(s): line 3" in str(caught.value)


def test_a_stray_word_among_numeric_labels_is_reported_by_line(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_csv(tmp_path, "a,label\n1,0\n2,one\n3,1\n")
    assert "label: coerce_dtype('float64') (not a number) failed for 1 row(s): line 3 ('one')" in str(caught.value)
