"""ScoreOptions: one checked object for the options of a scoring pass, and the checkpoint fingerprint made from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import make_dataset, make_model
from torch import nn
from torch.utils.data import DataLoader

from hardmine.core import validate
from hardmine.scoring.engine import score, score_tensors
from hardmine.scoring.options import ScoreOptions

# (option, bad value, the check hardmine.core.validate makes of it)
BAD_VALUES = [
    ("batch_size", True, lambda v: validate.integer("batch_size", v, min=1)),
    ("batch_size", 0, lambda v: validate.integer("batch_size", v, min=1)),
    ("batch_size", 2.0, lambda v: validate.integer("batch_size", v, min=1)),
    ("checkpoint_every", 0, lambda v: validate.integer("checkpoint_every", v, min=1)),
    ("checkpoint_every", False, lambda v: validate.integer("checkpoint_every", v, min=1)),
    ("keep_probs", 1, lambda v: validate.boolean("keep_probs", v)),
    ("progress", "no", lambda v: validate.boolean("progress", v)),
    ("channels_last", None, lambda v: validate.boolean("channels_last", v)),
    ("targets", 0, lambda v: validate.boolean("targets", v)),
    ("outputs", "softmax", lambda v: validate.choice("outputs", v, ("logits", "probs", None))),
]


def _error(check, value):
    with pytest.raises((TypeError, ValueError)) as info:
        check(value)
    return type(info.value), str(info.value)


@pytest.mark.parametrize(("name", "value", "check"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES])
def test_a_bad_value_gets_the_error_validate_gives(name, value, check):
    kind, message = _error(check, value)
    with pytest.raises(kind) as info:
        ScoreOptions(**{name: value})
    assert str(info.value) == message and f"`{name}`" in message
    with pytest.raises(kind) as info:  # the same error from the verb, before any batch is read
        score(make_model(3), DataLoader(make_dataset(4, 3)), **({"progress": False} | {name: value}))
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "value", "kind", "message"),
    [
        ("amp", "fp8", ValueError, r"`amp` must be one of 'bf16'"),
        ("amp", torch.float64, ValueError, r"`amp` must be one of torch.float16, torch.bfloat16, got torch.float64"),
        ("amp", 3, TypeError, r"`amp` must be a bool, 'bf16', 'fp16' or a torch dtype, got int 3"),
        ("device", "gpu0", ValueError, r"`device` must name a torch device, got str 'gpu0'"),
        ("task", "keypoints", ValueError, r"`task` must be one of 'classification'"),
        ("task", 3, TypeError, r"`task` must be a task name, a hardmine Task object or None, got int 3"),
        ("loss_fn", "mse", TypeError, r"`loss_fn` must be callable or None, got str 'mse'"),
        ("unpack", 1, TypeError, r"`unpack` must be callable or None, got int 1"),
        ("input_key", 0, TypeError, r"`input_key` must be a string or None, got int 0"),
        ("checkpoint_dir", 5, TypeError, r"`checkpoint_dir` must be a folder path or None, got int 5"),
    ],
)
def test_other_bad_values_name_the_option(name, value, kind, message):
    with pytest.raises(kind, match=message):
        ScoreOptions(**{name: value})


def test_values_are_normalised_and_the_object_is_frozen():
    import numpy as np

    opts = ScoreOptions(batch_size=np.int64(8), keep_probs=True)
    assert type(opts.batch_size) is int and opts.batch_size == 8 and opts.keep_probs is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.batch_size = 4  # type: ignore[misc]
    assert opts.but(batch_size=4).batch_size == 4 and opts.batch_size == 8
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        opts.but(batch_size=True)


def test_score_batch_size_true_is_a_type_error():
    with pytest.raises(TypeError, match=r"`batch_size` must be an integer, got bool True"):
        score(make_model(3), DataLoader(make_dataset(4, 3)), batch_size=True, progress=False)


def test_options_object_equals_the_keywords_and_comes_alone():
    model, data = make_model(3), make_dataset(11, 3)
    loader = DataLoader(data, batch_size=4)
    by_keywords = score(model, loader, keep_probs=True, batch_size=3, progress=False)
    by_object = score(model, loader, options=ScoreOptions(keep_probs=True, batch_size=3, progress=False))
    assert by_object.equals(by_keywords) and "prob_2" in by_object.columns
    tensors = score_tensors(model, loader, ScoreOptions(keep_probs=True, progress=False))
    assert torch.equal(tensors["label"], torch.tensor(by_keywords["label"].to_numpy()))
    with pytest.raises(ValueError, match=r"`options` must come alone, got it together with \['keep_probs'\]"):
        score(model, loader, options=ScoreOptions(), keep_probs=True)
    with pytest.raises(TypeError, match=r"`options` must be a hardmine ScoreOptions or None, got dict"):
        score(model, loader, options={"keep_probs": True})  # type: ignore[arg-type]
    assert ScoreOptions(keep_probs=True, progress=False).changed() == ["progress", "keep_probs"]


def _loss(outputs, targets):
    return nn.functional.cross_entropy(outputs, targets, reduction="none")


# Every option, with a value other than its default.
OTHER_VALUE = {
    "device": "cpu",
    "amp": "bf16",
    "progress": False,
    "unpack": lambda batch: (batch[0], batch[1]),
    "input_key": "x",
    "target_key": "y",
    "batch_size": 5,
    "keep_probs": True,
    "channels_last": True,
    "checkpoint_dir": "elsewhere",
    "checkpoint_every": 3,
    "targets": False,
    "loss_fn": _loss,
    "task": "soft",
    "outputs": "probs",
}
# The options that change no result, only how the pass runs (device counts through its type, batch_size once resolved).
RUN_ONLY = {"progress", "checkpoint_dir", "checkpoint_every", "device", "batch_size"}


def test_other_values_cover_every_option():
    assert set(OTHER_VALUE) == {f.name for f in dataclasses.fields(ScoreOptions)}


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_the_fingerprint_changes_exactly_when_a_result_deciding_option_changes(name):
    model, loader = make_model(3), DataLoader(make_dataset(6, 3), batch_size=2)

    def fingerprint(opts):
        return opts.fingerprint(model, loader, device=torch.device("cpu"), batch_size=2, world_size=1, rank=0)

    base = fingerprint(ScoreOptions())
    assert (fingerprint(ScoreOptions(**{name: OTHER_VALUE[name]})) != base) == (name not in RUN_ONLY)
    assert fingerprint(ScoreOptions()) == base  # a pure function of the options, the model and the data


def test_the_fingerprint_follows_the_model_the_data_and_the_resolved_pass():
    model, loader = make_model(3), DataLoader(make_dataset(6, 3), batch_size=2)
    opts = ScoreOptions()

    def fp(**kw):
        args = dict(model=model, loader=loader, device=torch.device("cpu"), batch_size=2, world_size=1, rank=0) | kw
        return opts.fingerprint(args.pop("model"), args.pop("loader"), **args)

    base = fp()
    assert fp(model=make_model(3, seed=1))["model_state"] != base["model_state"]
    assert fp(loader=DataLoader(make_dataset(6, 3, seed=1)))["dataset_samples"] != base["dataset_samples"]
    assert fp(batch_size=3)["batch_size"] == 3 and fp(device=torch.device("meta"))["device_type"] == "meta"
    assert fp(world_size=2, rank=1) | {"world_size": 1, "rank": 0} == base
