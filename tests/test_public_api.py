"""Every public name of hardmine 0.2.0 still imports; the internals moved out of the top level warn once used.

The lists are written out by hand from 0.2.0's ``hardmine.__all__`` so that a name dropped by accident fails here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import hardmine as hm

# hardmine.__all__ in 0.2.0, name by name.
PUBLIC_0_2_0 = (
    "HARDER_WHEN MEASURES Dynamics HardMiner HardSampler HardSetCollapseWarning IndexedLoader ShareBatchSampler "
    "Summary __version__ add_dynamics confident_thresholds confusion cross_val_scores dynamics_regions focal_loss "
    "functional importance_weights issue_indices label_issues label_quality ohem_loss plot positive_prob "
    "precision_recall_f1 read_csv read_parquet score select split summary threshold_sweep to_csv to_parquet "
    "weighted_loss weights with_indices wrap"
).split()

# The internals that left the top level, and the module each one lives in.
MOVED = {
    name: module
    for module, names in [
        ("hardmine.measures", "HARDER_WHEN MEASURES"),
        ("hardmine.data", "IndexedLoader"),
        ("hardmine.miner", "ShareBatchSampler importance_weights"),
        ("hardmine.labels", "confident_thresholds label_quality"),
        ("hardmine.dynamics", "dynamics_regions"),
    ]
    for name in names.split()
}

# Names added to the top level since 0.2.0, each with the capability that brought it.
NEW_SINCE_0_2_0 = (
    "Report report "  # the interactive report
    "DoubleShardingWarning MinerSampler "  # the training loops and frameworks
    "ProbabilityOutputWarning Task classification_report multilabel_report regression_metrics tasks "  # every task
    "SegmentationTask SequenceTask ohem_pixel_loss plot_dense score_detection segmentation_summary "  # dense tasks
    "ScoreDataset ShardedSampler open_scores score_to_parquet "  # past one machine's memory
    "LossHistory ObservedScores select_batch"  # mining that pays
).split()


def test_all_is_the_old_surface_without_the_moved_internals_plus_the_new_names():
    assert set(MOVED) <= set(PUBLIC_0_2_0)
    assert sorted(hm.__all__) == sorted([n for n in PUBLIC_0_2_0 if n not in MOVED] + NEW_SINCE_0_2_0)


@pytest.mark.parametrize("name", [n for n in PUBLIC_0_2_0 if n not in MOVED])
def test_public_name_imports_without_a_warning(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = getattr(hm, name)
        exec(f"from hardmine import {name}", {})
    assert obj is not None


@pytest.mark.parametrize("name", sorted(MOVED))
def test_moved_name_still_works_and_warns_with_its_new_home(name):
    module = MOVED[name]
    with pytest.warns(DeprecationWarning, match=rf"hardmine\.{name} is deprecated.*from {module} import {name}"):
        obj = getattr(hm, name)
    assert obj is getattr(importlib.import_module(module), name)
    with pytest.warns(DeprecationWarning, match=rf"from {module} import {name}"):
        namespace: dict = {}
        exec(f"from hardmine import {name}", namespace)
    assert namespace[name] is obj


@pytest.mark.parametrize("name", sorted(MOVED))
def test_moved_name_from_its_module_does_not_warn(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(f"from {MOVED[name]} import {name}", {})


def test_the_warning_points_at_the_caller():
    with pytest.warns(DeprecationWarning) as record:
        hm.MEASURES  # noqa: B018
    assert record[0].filename == __file__


def test_star_import_and_unknown_names():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace: dict = {}
        exec("from hardmine import *", namespace)
    assert set(hm.__all__) <= set(namespace)
    assert not set(MOVED) & set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        hm.nonexistent  # noqa: B018
    with pytest.raises(ImportError):
        exec("from hardmine import nonexistent", {})


def test_import_hardmine_warns_nothing():
    # In a fresh interpreter, with every warning an error: importing the package touches no moved name.
    code = "import warnings; warnings.simplefilter('error'); import hardmine; print(len(hardmine.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) == len(PUBLIC_0_2_0) - len(MOVED) + len(NEW_SINCE_0_2_0)
