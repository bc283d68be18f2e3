from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.core.errors import DataError, DataErrors
from tasks.core.hashing import file_sha256
from tasks.houses.ingest import ATTRIBUTE_COLUMNS, ingest_houses
from tests.fixtures import make_houses, small_zipcodes


def test_reads_space_separated_file_and_pairs_photos(houses: Path):
    result = ingest_houses(houses)
    assert result.houses_read == 12
    assert result.houses["house"].tolist() == list(range(1, 13))
    assert result.houses.loc[0, "photo_frontal"] == "1_frontal.jpg"
    assert result.houses.loc[0, "zipcode"] == 90001
    assert result.skipped == []


def test_manifest_records_each_input_files_hash(houses: Path):
    manifest = ingest_houses(houses).manifest
    assert len(manifest["photos"]) == 48
    assert manifest["photos"]["3_kitchen.jpg"] == file_sha256(houses / "3_kitchen.jpg")
    assert manifest["attributes"]["HousesInfo.txt"] == file_sha256(houses / "HousesInfo.txt")


def test_the_manifest_file_is_the_manifest_as_json_written_block_by_block(houses: Path, tmp_path: Path):
    result = ingest_houses(houses)
    expected = json.dumps(result.manifest, indent=2) + "\n"
    for block in (1, 7, 10000):
        assert result.write_manifest(tmp_path / f"manifest-{block}.json", block).read_text() == expected
    result.houses = result.houses.iloc[:0]
    assert result.write_manifest(tmp_path / "empty.json").read_text() == json.dumps(result.manifest, indent=2) + "\n"


def test_csv_with_header_gives_the_same_houses(tmp_path: Path, houses: Path):
    from_csv = ingest_houses(make_houses(tmp_path / "csv", small_zipcodes(), csv=True))
    from_txt = ingest_houses(houses)
    columns = ["house", "bedrooms", "bathrooms", "area", "zipcode", "price"]
    assert from_csv.houses[columns].equals(from_txt.houses[columns])


def _error(folder: Path) -> str:
    with pytest.raises(DataError) as caught:
        ingest_houses(folder)
    return str(caught.value)


def _set_line(folder: Path, number: int, text: str) -> None:
    path = folder / "HousesInfo.txt"
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_missing_photo_is_named(houses: Path):
    (houses / "4_kitchen.jpg").unlink()
    message = _error(houses)
    assert "4_kitchen.jpg" in message and "missing" in message


def test_zero_byte_photo_is_named(houses: Path):
    (houses / "2_bedroom.jpg").write_bytes(b"")
    message = _error(houses)
    assert "2_bedroom.jpg" in message and "empty" in message


def test_photo_that_is_not_an_image_is_named(houses: Path):
    (houses / "2_bedroom.jpg").write_text("not a picture")
    assert "2_bedroom.jpg: photo is not a JPEG or PNG image" in _error(houses)


def test_a_photo_that_cannot_be_read_is_named(houses: Path):
    (houses / "6_frontal.jpg").unlink()
    (houses / "6_frontal.jpg").mkdir()  # a folder by a photo's name
    assert "6_frontal.jpg: photo cannot be read (Is a directory) (house 6, frontal)" in _error(houses)


def test_of_two_files_for_one_photo_the_first_name_in_order_is_taken(houses: Path):
    (houses / "2_Kitchen.PNG").write_bytes((houses / "1_kitchen.jpg").read_bytes())
    (houses / "007_frontal.jpg").write_bytes((houses / "1_frontal.jpg").read_bytes())  # house 7, leading zeros
    (houses / "notes_frontal.jpg").write_text("not a house's photo: passed over")
    result = ingest_houses(houses)
    assert result.houses.loc[1, "photo_kitchen"] == "2_Kitchen.PNG"  # before 2_kitchen.jpg in byte order
    assert result.houses.loc[1, "sha_kitchen"] == file_sha256(houses / "2_Kitchen.PNG")
    assert result.houses.loc[6, "photo_frontal"] == "007_frontal.jpg"


def test_photo_names_and_hashes_are_arrow_columns_not_python_strings(houses: Path):
    table = ingest_houses(houses).houses
    for column in ("photo_frontal", "sha_kitchen"):
        assert table[column].dtype == "str" and table[column].array.__class__.__name__ == "ArrowStringArray"


def test_wrong_number_of_fields_names_file_and_line(houses: Path):
    _set_line(houses, 5, "3 2 1500 90001")
    assert "HousesInfo.txt:5: expected 5 fields" in _error(houses)


def test_non_numeric_price_names_file_and_line(houses: Path):
    _set_line(houses, 3, "3 2 1500 90001 cheap")
    assert "HousesInfo.txt:3: price is not a number: 'cheap'" in _error(houses)


@pytest.mark.parametrize("line, column", [("3 2 0 90001 100000", "area"), ("3 2 1500 90001 -5", "price")])
def test_non_positive_values_are_rejected(houses: Path, line: str, column: str):
    _set_line(houses, 7, line)
    assert f"HousesInfo.txt:7: {column} must be positive" in _error(houses)


def test_photos_of_a_house_with_no_line(houses: Path):
    for kind in ("bathroom", "bedroom", "frontal", "kitchen"):
        (houses / f"13_{kind}.jpg").write_bytes((houses / f"1_{kind}.jpg").read_bytes())
    assert "photos for house 13 but HousesInfo.txt has no line for it" in _error(houses)


def test_empty_attributes_file(houses: Path):
    (houses / "HousesInfo.txt").write_text("")
    assert "HousesInfo.txt: the attributes file is empty" in _error(houses)


def test_missing_folder_and_missing_attributes_file(tmp_path: Path):
    assert "data folder does not exist" in _error(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "no attributes file" in _error(tmp_path / "empty")


def test_csv_missing_column_is_named(tmp_path: Path):
    folder = make_houses(tmp_path / "csv", small_zipcodes(), csv=True)
    (folder / "houses.csv").write_text("bedrooms,bathrooms,area,price\n1,1,1000,5\n")
    assert "houses.csv:1: CSV header lacks column(s) zipcode" in _error(folder)


def test_all_problems_are_reported_at_once(houses: Path):
    _set_line(houses, 3, "x")
    (houses / "8_frontal.jpg").unlink()
    with pytest.raises(DataErrors) as caught:
        ingest_houses(houses)
    assert len(caught.value.problems) == 2
    assert "--on-bad-house skip" in str(caught.value)


def test_skip_leaves_bad_houses_out_and_lists_them(houses: Path):
    _set_line(houses, 3, "3 2 1500 90001 cheap")
    (houses / "8_frontal.jpg").unlink()
    result = ingest_houses(houses, on_bad_house="skip")
    assert result.houses_read == 12
    assert 3 not in result.houses["house"].tolist() and 8 not in result.houses["house"].tolist()
    assert len(result.houses) == 10
    assert [item["house"] for item in result.skipped] == [3, 8]
    assert "cheap" in result.skipped[0]["reason"]
    # a house with a photo missing does not shift the hashes of the photos after it
    assert len(result.manifest["photos"]) == 40
    assert all(sha == file_sha256(houses / name) for name, sha in result.manifest["photos"].items())


def _lines(houses: Path) -> list[str]:
    return (houses / "HousesInfo.txt").read_text().splitlines()


@pytest.mark.parametrize("variant, note", [
    ("bom", "passed over the byte-order mark at its start"),
    ("trailing-blank-lines", "passed over 3 blank line(s) at its end"),
    ("crlf-and-tabs", None),
])
def test_what_the_tutorials_reader_passes_over_is_accepted_with_a_note(houses: Path, variant: str, note: str | None):
    """pandas.read_csv(sep=" ", header=None), the tutorials' reader, passes over these; the meaning is clear."""
    clean = ingest_houses(houses).houses
    lines = _lines(houses)
    text = {"bom": "\ufeff" + "\n".join(lines) + "\n",
            "trailing-blank-lines": "\n".join(lines) + "\n\n  \n\t\n",
            "crlf-and-tabs": "\r\n".join(line.replace(" ", "\t", 1) + "  " for line in lines) + "\r\n"}[variant]
    (houses / "HousesInfo.txt").write_bytes(text.encode())
    result = ingest_houses(houses)
    assert result.houses[["house", *ATTRIBUTE_COLUMNS]].equals(clean[["house", *ATTRIBUTE_COLUMNS]])
    assert result.notes == ([f"HousesInfo.txt: {note}"] if note else [])


def test_csv_blank_lines_and_bom_are_passed_over(tmp_path: Path):
    folder = make_houses(tmp_path / "h", [90001, 90002, 90001], csv=True)
    clean = ingest_houses(folder).houses
    lines = (folder / "houses.csv").read_text().splitlines()
    (folder / "houses.csv").write_text("\ufeff" + lines[0] + "\n" + lines[1] + "\n\n" + "\n".join(lines[2:]) + "\n\n")
    result = ingest_houses(folder)
    assert result.houses[["house", *ATTRIBUTE_COLUMNS]].equals(clean[["house", *ATTRIBUTE_COLUMNS]])
    assert any("passed over blank line(s) 3" in note for note in result.notes)


@pytest.mark.parametrize("change, expected", [
    (lambda lines: lines[:2] + [""] + lines[2:], "HousesInfo.txt:3: empty line (house 3 has no attributes; line n "
                                                  "holds house n"),
    (lambda lines: ["bedrooms bathrooms area zipcode price"] + lines, "HousesInfo.txt:1: line 1 is a header"),
])
def test_what_is_ambiguous_stays_an_error_with_file_and_line(houses: Path, change, expected: str):
    (houses / "HousesInfo.txt").write_text("\n".join(change(_lines(houses))) + "\n")
    with pytest.raises(DataError, match=re.escape(expected)):
        ingest_houses(houses)
