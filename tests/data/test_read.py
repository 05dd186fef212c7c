"""Large files: the streaming reader and the slice-by-slice validation give what reading the
whole text into pandas and validating it at once gives (frames, dtypes, messages, lines)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd
import pytest

from trainflow.data import read, schemas
from trainflow.data import validate as validate_module
from trainflow.data.datasets import CsvConfig, CsvDataset, DigitsConfig, DigitsDataset
from trainflow.data.validate import validate
from trainflow.errors import DataError

REPO = Path(__file__).resolve().parents[2]
DIGITS_ROWS = gzip.decompress((REPO / "data" / "raw" / "digits.csv.gz").read_bytes()).decode()
HEADER = ",".join([*(f"p{index}" for index in range(64)), "label"]) + "\n"
REPEATS = 12  # 21,564 rows, about 3 MB


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces and slices far smaller than the file, so a few MB cross many boundaries."""
    monkeypatch.setattr(read, "CHUNK_BYTES", 1 << 16)
    monkeypatch.setattr(read, "BLOCK_BYTES", 1 << 16)
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 3000)


def whole_text_load(text: str, schema_for: CsvDataset, names: list[str] | None = None) -> pd.DataFrame:
    """The reference: the whole text parsed by pandas at once, validated at once, then cast."""
    frame = pd.read_csv(io.StringIO(text), header=None if names else 0, names=names)
    schema_for.label_names = schema_for.names_labels(frame)
    schema = schema_for.schema(list(frame.columns))
    validated = schemas.cast_integers(validate(frame, schema, "reference"), schema)
    return validated[[*schema_for.features(list(frame.columns)), schema_for.config.label_column]]


def csv_dataset(path: str = "table.csv") -> CsvDataset:
    return CsvDataset(CsvConfig(name="csv", path=path, label_column="label"))


def test_a_large_integer_csv_loads_as_the_whole_text_reader_loads_it(tmp_path: Path, small_steps: None) -> None:
    text = HEADER + DIGITS_ROWS * REPEATS
    (tmp_path / "table.csv").write_text(text)
    loaded = csv_dataset().load(tmp_path)
    expected = whole_text_load(text, csv_dataset())
    assert len(loaded) == 1797 * REPEATS
    pd.testing.assert_frame_equal(schemas.as_stored(loaded), expected, check_exact=True)
    # Held as int8 (digits' 0..16), written as the float64 features and int64 label they stand for.
    assert (loaded.dtypes == "int8").all()
    assert schemas.stored_dtypes(loaded) == {**{f"p{index}": "float64" for index in range(64)}, "label": "int64"}


def test_a_large_csv_of_floats_and_class_names_loads_as_the_whole_text_reader_loads_it(
    tmp_path: Path, small_steps: None
) -> None:
    # The digit's label as a name (b0..b9) and a float column (label / 10) before it.
    lines = [f"{line[: line.rindex(',')]},{int(line[-1]) / 10},b{line[-1]}" for line in DIGITS_ROWS.splitlines()]
    text = HEADER.replace("label", "value,label") + "\n".join(lines * 3) + "\n"
    (tmp_path / "table.csv").write_text(text)
    loaded = csv_dataset().load(tmp_path)
    expected = whole_text_load(text, csv_dataset())
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)
    assert loaded["value"].dtype == "float64" and not pd.api.types.is_numeric_dtype(loaded["label"])


def test_the_large_headerless_digits_file_loads_as_the_whole_text_reader_loads_it(
    tmp_path: Path, small_steps: None
) -> None:
    (tmp_path / "digits.csv.gz").write_bytes(gzip.compress((DIGITS_ROWS * REPEATS).encode(), mtime=0))
    loaded = DigitsDataset(DigitsConfig(name="digits", path="digits.csv.gz")).load(tmp_path)
    names = [*schemas.DIGITS_FEATURES, schemas.DIGITS_LABEL]
    frame = pd.read_csv(io.StringIO(DIGITS_ROWS * REPEATS), header=None, names=names)
    expected = schemas.cast_integers(validate(frame, schemas.digits_schema(), "reference"), schemas.digits_schema())
    pd.testing.assert_frame_equal(schemas.as_stored(loaded), expected, check_exact=True)
    assert all(dtype == "int8" for dtype in loaded.dtypes)
    assert set(schemas.stored_dtypes(loaded).values()) == {"int64"}


def test_a_bad_value_in_a_late_slice_names_its_line_as_the_whole_file_check_does(
    tmp_path: Path, small_steps: None
) -> None:
    rows = (HEADER + DIGITS_ROWS * REPEATS).splitlines(keepends=True)
    bad = 20_001  # line number, header counted
    fields = rows[bad - 1].split(",")
    rows[bad - 1] = ",".join(["x", *fields[1:]])
    (tmp_path / "table.csv").write_text("".join(rows))
    with pytest.raises(DataError) as caught:
        csv_dataset().load(tmp_path)
    assert str(caught.value) == (
        "table.csv: 1 check(s) failed\n"
        "  p0: coerce_dtype('float64') (not a number) failed for 1 row(s): line 20001 ('x')"
    )


def test_a_row_with_missing_fields_late_in_the_file_names_its_line(tmp_path: Path, small_steps: None) -> None:
    rows = (HEADER + DIGITS_ROWS * REPEATS).splitlines(keepends=True)
    rows[15_000] = rows[15_000].split(",", 1)[1]  # line 15001 loses its first field
    (tmp_path / "table.csv").write_text("".join(rows))
    with pytest.raises(
        DataError, match=r"^table.csv: 1 row\(s\) do not have the 65 fields expected: line 15001 has 64$"
    ):
        csv_dataset().load(tmp_path)


def test_a_non_utf8_byte_far_into_the_file_is_named_with_its_offset(tmp_path: Path, small_steps: None) -> None:
    data = (HEADER + DIGITS_ROWS * 2).encode()
    at = 300_000
    (tmp_path / "table.csv").write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    with pytest.raises(
        DataError, match=rf"^table.csv: not UTF-8 text \(byte 0xff at offset {at}\); is it a binary file\?$"
    ):
        csv_dataset().load(tmp_path)


def test_text_across_piece_boundaries_and_a_byte_order_mark_are_read_whole(tmp_path: Path, small_steps: None) -> None:
    names = [f"é{index}" for index in range(2000)]  # a header line longer than one piece
    text = ",".join([*names, "label"]) + "\n" + ("1," * 2000 + "0\n") + ("2," * 2000 + "1\n")
    (tmp_path / "table.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    frame, locate = read.read_csv(tmp_path / "table.csv", "table.csv")
    assert list(frame.columns) == [*names, "label"]
    assert frame["label"].tolist() == [0, 1] and locate(1) == "line 3"


def test_a_large_csv_with_listed_feature_columns_keeps_only_those(tmp_path: Path, small_steps: None) -> None:
    text = HEADER + DIGITS_ROWS * REPEATS
    (tmp_path / "table.csv").write_text(text)
    listed = ("p5", "p2", "p40")
    dataset = CsvDataset(CsvConfig(name="csv", path="table.csv", label_column="label", feature_columns=listed))
    loaded = dataset.load(tmp_path)
    reference = CsvDataset(CsvConfig(name="csv", path="table.csv", label_column="label", feature_columns=listed))
    pd.testing.assert_frame_equal(schemas.as_stored(loaded), whole_text_load(text, reference), check_exact=True)
    assert list(loaded.columns) == [*listed, "label"]


def test_a_column_whose_late_values_need_a_wider_integer_is_widened_exactly(tmp_path: Path, small_steps: None) -> None:
    # Small numbers for most of the file, then values that need int16 and int32, then int64.
    values = [index % 100 for index in range(20_000)] + [-30_000, 70_000, 3_000_000_000, -(2**53) - 1]
    text = "x,y,label\n" + "".join(f"{value},{index % 7},{index % 2}\n" for index, value in enumerate(values))
    (tmp_path / "table.csv").write_text(text)
    frame, _ = read.read_csv(tmp_path / "table.csv", "table.csv")
    assert frame.dtypes.tolist() == ["int64", "int8", "int8"]
    pd.testing.assert_frame_equal(frame.astype("int64"), pd.read_csv(io.StringIO(text)), check_exact=True)
    loaded = csv_dataset().load(tmp_path)
    pd.testing.assert_frame_equal(schemas.as_stored(loaded), whole_text_load(text, csv_dataset()), check_exact=True)


def test_a_narrow_column_read_as_an_int8_frame_keeps_its_values(tmp_path: Path) -> None:
    text = "a,b,label\n" + "".join(f"{index % 128},{-index},{index % 3}\n" for index in range(300))
    (tmp_path / "table.csv").write_text(text)
    frame, _ = read.read_csv(tmp_path / "table.csv", "table.csv")
    assert frame.dtypes.tolist() == ["int8", "int16", "int8"]
    reference = pd.read_csv(io.StringIO(text))
    pd.testing.assert_frame_equal(frame.astype("int64"), reference, check_exact=True)
