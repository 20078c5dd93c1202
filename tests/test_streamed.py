"""score_to_parquet: chunked scoring into a Parquet dataset equals hm.score, resumes, and shards under torchrun."""

from __future__ import annotations

from pathlib import Path

import gloo
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import CountingDataset, make_dataset, make_model
from torch.utils.data import DataLoader

import hardmine as hm
from hardmine.scoring.streamed import score_to_parquet

pytest.importorskip("duckdb")


def _frame(ds: hm.ScoreDataset) -> pd.DataFrame:
    table = ds.to_pandas()
    table.attrs = {}
    return table


def _expected(model: torch.nn.Module, data, **kwargs) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    table = hm.score(model, DataLoader(data, batch_size=7), progress=False, **kwargs)
    table.attrs = {}
    return table


@pytest.mark.parametrize("keep_probs", [False, True])
def test_chunks_equal_one_pass(tmp_path: Path, keep_probs: bool) -> None:
    model, data = make_model(4), make_dataset(53, 4)
    ds = score_to_parquet(
        model,
        DataLoader(data, batch_size=7, shuffle=True),
        tmp_path / "s",
        chunk_size=10,
        progress=False,
        keep_probs=keep_probs,
    )
    assert [f.name for f in ds.files] == [f"part-{k:06d}.parquet" for k in range(6)]
    assert ds.settings["num_classes"] == 4 and ds.settings["chunk"] == {"start": 0, "stop": 10, "num_samples": 53}
    pd.testing.assert_frame_equal(_frame(ds), _expected(model, data, keep_probs=keep_probs), rtol=1e-5, atol=1e-6)
    assert not list((tmp_path / "s").glob("*.tmp"))


def test_ids_follow_the_global_index(tmp_path: Path) -> None:
    model, data = make_model(3), make_dataset(12, 3)
    ids = [f"sample-{i}" for i in range(12)]
    ds = score_to_parquet(model, DataLoader(data, batch_size=5), tmp_path / "s", chunk_size=5, ids=ids, progress=False)
    assert ds.to_pandas()["id"].tolist() == ids
    with pytest.raises(ValueError, match="one id per dataset sample"):
        score_to_parquet(model, DataLoader(data), tmp_path / "t", ids=ids[:3])


def test_resume_scores_only_the_missing_chunks(tmp_path: Path) -> None:
    model, data = make_model(3), make_dataset(40, 3)
    out = tmp_path / "s"
    score_to_parquet(model, DataLoader(data, batch_size=4), out, chunk_size=8, progress=False)
    (out / "part-000002.parquet").unlink()  # killed before chunk 2 was moved into place
    (out / "part-000004.parquet").write_bytes(b"PAR1 half a file")  # a damaged file is scored again
    counting = CountingDataset(data)
    ds = score_to_parquet(model, DataLoader(counting, batch_size=4), out, chunk_size=8, progress=False)
    assert counting.calls == [1 if 16 <= i < 24 or i >= 32 else 0 for i in range(40)]
    pd.testing.assert_frame_equal(_frame(ds), _expected(model, data), rtol=1e-5, atol=1e-6)


def test_a_folder_from_another_run_is_refused(tmp_path: Path) -> None:
    model, data = make_model(3), make_dataset(20, 3)
    score_to_parquet(model, DataLoader(data, batch_size=4), tmp_path, chunk_size=8, progress=False)
    with pytest.raises(ValueError, match="only this run's chunks"):
        score_to_parquet(model, DataLoader(data, batch_size=4), tmp_path, chunk_size=5, progress=False)
    with pytest.raises(ValueError, match="`chunk_size`"):
        score_to_parquet(model, DataLoader(data), tmp_path, chunk_size=0)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    gloo.init_gloo(rank, world, port)
    try:
        counting = CountingDataset(make_dataset(29, 3))
        score_to_parquet(make_model(3), DataLoader(counting, batch_size=4), out, chunk_size=6, progress=False)
        torch.save(torch.tensor(counting.calls), Path(out).parent / f"calls{rank}.pt")
        dist.barrier()  # no rank leaves gloo while another still works: that can abort the other at exit
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(not gloo.available(), reason="needs gloo")
def test_two_ranks_write_the_one_process_table_each_sample_once(tmp_path: Path) -> None:
    out = tmp_path / "s"
    mp.start_processes(_worker, args=(2, gloo.free_port(), str(out)), nprocs=2, join=True, start_method="spawn")
    per_rank = [torch.load(tmp_path / f"calls{r}.pt") for r in range(2)]
    assert sum(per_rank).tolist() == [1] * 29  # every sample read exactly once over both ranks
    # Whole chunks per rank (chunk k on rank k % 2), nothing gathered: rank 0 read chunks 0, 2, 4, rank 1 chunks 1, 3.
    chunk_of = torch.arange(29) // 6
    for rank, calls in enumerate(per_rank):
        assert calls.tolist() == (chunk_of % 2 == rank).long().tolist()
    ds = hm.open_scores(out)
    assert len(ds.files) == 5
    pd.testing.assert_frame_equal(_frame(ds), _expected(make_model(3), make_dataset(29, 3)), rtol=1e-5, atol=1e-6)


def test_score_out_streams_the_same_table_as_score_to_parquet_and_in_memory(tmp_path: Path) -> None:
    model, data = make_model(4), make_dataset(23, 4)
    loader = DataLoader(data, batch_size=7, shuffle=True)
    handle = hm.score(model, loader, out=tmp_path / "a", progress=False, keep_probs=True)
    assert isinstance(handle, hm.ScoreDataset) and [f.name for f in handle.files] == ["part-000000.parquet"]
    direct = score_to_parquet(model, loader, tmp_path / "b", progress=False, keep_probs=True)
    pd.testing.assert_frame_equal(_frame(handle), _frame(direct))
    pd.testing.assert_frame_equal(_frame(handle), _expected(model, data, keep_probs=True), rtol=1e-5, atol=1e-6)
    assert handle.settings["num_classes"] == 4 and "prob_3" in handle.columns


def test_score_out_checks_its_options_before_writing(tmp_path: Path) -> None:
    model, data = make_model(3), make_dataset(6, 3)
    with pytest.raises(TypeError, match=r"`batch_size` must be an integer, got bool True"):
        hm.score(model, DataLoader(data), out=tmp_path / "s", batch_size=True)
    with pytest.raises(TypeError, match=r"`chunk_size` must be an integer, got bool True"):
        score_to_parquet(model, DataLoader(data), tmp_path / "s", chunk_size=True)
    assert not (tmp_path / "s").exists()
