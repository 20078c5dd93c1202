import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_dataset, make_model
from reference import GROUP_NAMES
from torch.utils.data import DataLoader

from hardmine.analysis.io import read_csv, read_parquet, select, to_csv, to_parquet
from hardmine.analysis.splitting import split
from hardmine.analysis.tablecheck import check_table
from hardmine.core.columns import COLUMNS, FLOAT_COLUMNS, value_range
from hardmine.scoring.engine import score

IDS = ["001", "NA", "a,b", 'say "hi"', " padded ", "nan", "None", "x\ty", "ünïcødé/path.png", "1e5"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """A real split table: 40 samples of 4 classes, with probabilities and awkward ids."""
    model, ds = make_model(4, seed=0), make_dataset(40, 4, seed=1)
    ids = IDS + [f"img_{i:03d}.png" for i in range(30)]
    scores = score(model, DataLoader(ds, batch_size=16), progress=False, keep_probs=True, ids=ids)
    out = split(scores, threshold=0.3, positive=[1, 3])
    assert set(out["group"]) == set(GROUP_NAMES)
    return out


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


def test_csv_round_trip_is_exact(table, tmp_path):
    path = to_csv(table, tmp_path / "scores.csv")
    assert path == tmp_path / "scores.csv" and path.is_file()
    back = read_csv(path)
    pd.testing.assert_frame_equal(back, table, check_exact=True)
    for col in ("confidence", "label_prob", "margin", "entropy", "loss", "prob_0", "prob_3"):
        assert back[col].dtype == np.float32
        np.testing.assert_array_equal(_bits(back[col].to_numpy()), _bits(table[col].to_numpy()), err_msg=col)
    assert back["id"].tolist() == table["id"].tolist()
    for col, cats in (
        ("polarity", ["positive", "negative"]),
        ("difficulty", ["hard", "easy"]),
        ("group", list(GROUP_NAMES)),
    ):
        assert list(back[col].cat.categories) == cats


def test_csv_round_trip_of_a_score_table_and_string_paths(table, tmp_path):
    scores = table.drop(columns=["polarity", "difficulty", "group"])
    to_csv(scores, str(tmp_path / "s.csv"), chunksize=7)
    pd.testing.assert_frame_equal(read_csv(str(tmp_path / "s.csv")), scores, check_exact=True)


def test_extreme_float32_values_are_bit_exact(tmp_path):
    values = np.array(
        [0.0, 1e-45, 1.1754944e-38, 1 / 3, 0.1, 1 - 2**-24, 3.4028235e38, np.nextafter(1, 2)], dtype=np.float32
    )
    t = pd.DataFrame({"index": np.arange(8, dtype=np.int64), "loss": values})
    back = read_csv(to_csv(t, tmp_path / "x.csv"))
    np.testing.assert_array_equal(_bits(back["loss"].to_numpy()), _bits(values))


@pytest.mark.parametrize(
    ("only", "keep"),
    [
        ("hard", lambda t: t["difficulty"] == "hard"),
        ("easy", lambda t: t["difficulty"] == "easy"),
        ("positive", lambda t: t["polarity"] == "positive"),
        ("negative", lambda t: t["polarity"] == "negative"),
        ("hard_negative", lambda t: t["group"] == "hard_negative"),
        (["hard_positive", "easy_negative"], lambda t: t["group"].isin(["hard_positive", "easy_negative"])),
        (("easy_positive",), lambda t: t["group"] == "easy_positive"),
    ],
    ids=["hard", "easy", "positive", "negative", "group", "group-list", "group-tuple"],
)
def test_only_selects_rows(table, tmp_path, only, keep):
    expected = table[keep(table)]
    assert 0 < len(expected) < len(table)
    pd.testing.assert_frame_equal(select(table, only), expected)
    back = read_csv(to_csv(table, tmp_path / "part.csv", only=only))
    pd.testing.assert_frame_equal(back, expected.reset_index(drop=True), check_exact=True)


def test_only_errors(table, tmp_path):
    for bad in ("medium", ["hard_positive", "tricky"], []):
        with pytest.raises(ValueError, match=r"`only` to be 'hard', 'easy', 'positive', 'negative', a group name"):
            to_csv(table, tmp_path / "x.csv", only=bad)
    unsplit = table.drop(columns=["polarity", "difficulty", "group"])
    with pytest.raises(ValueError, match=r"only='hard' needs the `difficulty` column.*hm.split"):
        to_csv(unsplit, tmp_path / "x.csv", only="hard")
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(TypeError, match=r"`table` to be a pandas DataFrame, but got dict"):
        to_csv({"index": [0]}, tmp_path / "x.csv")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(table, tmp_path, monkeypatch, fmt):
    write, method = (to_csv, "to_csv") if fmt == "csv" else (to_parquet, "to_parquet")
    dest = tmp_path / f"scores.{fmt}"
    write(table, dest)
    old = dest.read_bytes()
    real = getattr(pd.DataFrame, method)

    def half_then_fail(self, path, *args, **kwargs):
        real(self.iloc[: len(self) // 2], path, *args, **kwargs)
        Path(path).write_bytes(Path(path).read_bytes()[:100])  # a torn write
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, method, half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write(table.iloc[::-1], dest)
    monkeypatch.undo()
    assert dest.read_bytes() == old
    # Only the table (and, for CSV, its sidecar, which still describes the old file): no temporary file is left.
    sidecar = [f"{dest.name}.hardmine.json"] if fmt == "csv" else []
    assert sorted(os.listdir(tmp_path)) == sorted([dest.name, *sidecar])
    pd.testing.assert_frame_equal(read_csv(dest) if fmt == "csv" else read_parquet(dest), table, check_exact=True)
    # And a write that succeeds replaces the file completely.
    write(table.iloc[:5], dest)
    back = read_csv(dest) if fmt == "csv" else read_parquet(dest)
    pd.testing.assert_frame_equal(back, table.iloc[:5], check_exact=True)
    assert sorted(os.listdir(tmp_path)) == sorted([dest.name, *sidecar])


def test_missing_folder_and_missing_file(table, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*no_such_dir.* does not exist"):
        to_csv(table, tmp_path / "no_such_dir" / "x.csv")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        to_parquet(table, tmp_path / "no_such_dir" / "x.parquet")
    with pytest.raises(FileNotFoundError, match=r"No such file: .*nothing.csv"):
        read_csv(tmp_path / "nothing.csv")
    with pytest.raises(FileNotFoundError, match=r"No such file"):
        read_parquet(tmp_path / "nothing.parquet")


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_read_csv_of_files_that_are_not_hardmine_tables(table, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"is not a hardmine table: it has no `index` column \(its columns are "
        r"\['name', 'age'\]\)",
    ):
        read_csv(_write_text(tmp_path / "people.csv", "name,age\nada,36\n"))
    with pytest.raises(ValueError, match=r"is empty, not a hardmine table"):
        read_csv(_write_text(tmp_path / "empty.csv", ""))
    for missing in (["loss"], ["entropy", "loss"], ["label_prob"], ["id", "pred"]):
        path = tmp_path / "partial.csv"
        table.drop(columns=missing).to_csv(path, index=False)
        names = ", ".join(f"'{m}'" for m in missing)
        with pytest.raises(ValueError, match=rf"not a complete hardmine score table: columns \[{names}\] are missing"):
            read_csv(path)
    table.drop(columns=["difficulty"]).to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(ValueError, match=r"has split columns \['polarity', 'group'\] but not \['difficulty'\]"):
        read_csv(tmp_path / "split.csv")
    bad_group = table.astype({"group": str}).copy()
    bad_group.loc[3, "group"] = "medium_positive"
    bad_group.to_csv(tmp_path / "group.csv", index=False)
    with pytest.raises(ValueError, match=r"column `group` has values \['medium_positive'\] \(rows \[3\]\)"):
        read_csv(tmp_path / "group.csv")
    text = table.drop(columns=["polarity", "difficulty", "group"]).to_csv(index=False)
    _write_text(tmp_path / "label.csv", text.replace("\n2,", "\n2.5,", 1).replace(",1,", ",one,", 1))
    with pytest.raises(ValueError, match=r"column `(index|label)` must hold whole numbers"):
        read_csv(tmp_path / "label.csv")


def test_read_csv_of_other_hardmine_tables(tmp_path):
    # A training-dynamics summary: no pred, its own columns; NaN for samples never seen.
    dyn = pd.DataFrame(
        {
            "index": np.arange(3, dtype=np.int64),
            "id": ["a", "b", "c"],
            "label": np.array([0, 1, -1], dtype=np.int64),
            "confidence": np.array([0.9, 0.2, np.nan], dtype=np.float32),
            "variability": np.array([0.1, 0.3, np.nan], dtype=np.float32),  # float32, as Dynamics.summary() writes it
            "epochs": np.array([3, 3, 0], dtype=np.int64),
        }
    )
    dyn["id"] = dyn["id"].astype(object)  # as Dynamics.summary() builds it
    back = read_csv(to_csv(dyn, tmp_path / "dyn.csv"))
    pd.testing.assert_frame_equal(back, dyn, check_exact=True)


def test_parquet_round_trip(table, tmp_path):
    path = to_parquet(table, tmp_path / "scores.parquet")
    pd.testing.assert_frame_equal(read_parquet(path), table, check_exact=True)
    hard = read_parquet(to_parquet(table, tmp_path / "hard.parquet", only="hard"))
    pd.testing.assert_frame_equal(hard, table[table["difficulty"] == "hard"].reset_index(drop=True), check_exact=True)
    pd.DataFrame({"name": ["ada"]}).to_parquet(tmp_path / "people.parquet")
    with pytest.raises(ValueError, match=r"no `index` column"):
        read_parquet(tmp_path / "people.parquet")


def test_a_table_split_without_a_positive_class_round_trips_and_its_difficulty_is_checked(tmp_path):
    # A multi-class table split easy/hard only has `difficulty` without `polarity`/`group`: it reads back whole, and
    # a `difficulty` that contradicts the recorded threshold is still caught, naming the column.
    import hardmine as hm

    scores = score(make_model(4), DataLoader(make_dataset(40, 4), batch_size=16), progress=False)
    threshold = float(scores["label_prob"].median())  # an untrained model: about half of the rows hard
    table = hm.split(scores, threshold=threshold)
    assert 0 < (table["difficulty"] == "hard").sum() < len(table)
    assert "polarity" not in table.columns and "group" not in table.columns
    path = to_csv(table, tmp_path / "multi.csv")
    back = read_csv(path)
    assert back["difficulty"].astype(str).tolist() == table["difficulty"].astype(str).tolist()
    assert back.attrs["hardmine"]["threshold"] == threshold
    # "hard" and "easy" have the same length: swapping them keeps the size and rows the sidecar records.
    text = path.read_text()
    path.write_text(text.replace(",hard", ",XXXX").replace(",easy", ",hard").replace(",XXXX", ",easy"))
    with pytest.raises(ValueError, match="column `difficulty` holds"):
        read_csv(path)


# ------------------------------------------------------------------------------------------------ the registry
_RANGED_FLOATS = sorted(c for c in FLOAT_COLUMNS if value_range(c) is not None)


@pytest.mark.parametrize("col", [*_RANGED_FLOATS, "prob_3"])
def test_the_range_check_of_a_table_read_back_is_the_registry_range(col):
    lo, hi = value_range(col)
    inside = lo + 0.5 if math.isinf(hi) else (lo + hi) / 2
    table = check_table(pd.DataFrame({"index": [0, 1], col: [inside, lo]}), "t.csv")
    assert table[col].dtype == np.float32  # a float column of the registry
    with pytest.raises(ValueError, match=rf"row 1, column `{col}` holds .*outside its range \[{lo}, {hi}\]"):
        check_table(pd.DataFrame({"index": [0, 1], col: [inside, lo - 0.5]}), "t.csv")


def test_every_float_column_of_the_registry_is_read_as_float32_and_ints_as_int64():
    for col, spec in COLUMNS.items():
        if spec.dtype not in ("float32", "int64") or col == "index":
            continue
        table = check_table(pd.DataFrame({"index": [0], col: [1]}), "t.csv")
        assert table[col].dtype == np.dtype(spec.dtype), col
