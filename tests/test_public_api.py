"""Every public name of hardmine 0.2.0 still imports; the internals moved out of the top level warn once used.

The lists are written out by hand from 0.2.0's ``hardmine.__all__`` so that a name dropped by accident fails here.
"""

from __future__ import annotations

import importlib
import json
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
        ("hardmine.scoring.measures", "HARDER_WHEN MEASURES"),
        ("hardmine.core.data", "IndexedLoader"),
        ("hardmine.feedback.batching", "ShareBatchSampler"),
        ("hardmine.feedback.apply_modes", "importance_weights"),
        ("hardmine.analysis.labels", "confident_thresholds label_quality"),
        ("hardmine.analysis.dynamics", "dynamics_regions"),
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
    "EarlyLearningLoss LossHistory ObservedScores PruningSampler PrioritySampler select_batch "  # mining that pays
    "ScoreOptions sample_weights"  # one options object for the scoring pass; `weights` renamed (issue 12)
).split()

# Public names of 0.2.0 renamed since, and their new names: the old name warns once used.
RENAMED = {"weights": "sample_weights"}


def test_all_is_the_old_surface_without_the_moved_internals_plus_the_new_names():
    assert set(MOVED) <= set(PUBLIC_0_2_0)
    old = [n for n in PUBLIC_0_2_0 if n not in MOVED and n not in RENAMED]
    assert sorted(hm.__all__) == sorted(old + NEW_SINCE_0_2_0)


@pytest.mark.parametrize("name", [n for n in PUBLIC_0_2_0 if n not in MOVED and n not in RENAMED])
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


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_renamed_name_still_works_and_warns_with_its_new_name(name):
    new = RENAMED[name]
    with pytest.warns(DeprecationWarning, match=rf"hardmine\.{name} is deprecated.*use hardmine\.{new}") as record:
        obj = getattr(hm, name)
    assert obj is getattr(hm, new) and record[0].filename == __file__
    with pytest.warns(DeprecationWarning, match=rf"use hardmine\.{new}"):
        namespace: dict = {}
        exec(f"from hardmine import {name}", namespace)
    assert namespace[name] is obj
    with pytest.warns(DeprecationWarning, match=rf"use hardmine\.{new}"):  # every use warns, not only the first
        getattr(hm, name)


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
    assert not (set(MOVED) | set(RENAMED)) & set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        hm.nonexistent  # noqa: B018
    with pytest.raises(ImportError):
        exec("from hardmine import nonexistent", {})


def test_import_hardmine_warns_nothing():
    # In a fresh interpreter, with every warning an error: importing the package touches no moved name.
    code = "import warnings; warnings.simplefilter('error'); import hardmine; print(len(hardmine.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout) == len(PUBLIC_0_2_0) - len(MOVED) - len(RENAMED) + len(NEW_SINCE_0_2_0)


# The flat module paths of 0.3.0, before the package was laid out in parts (issue 12): each old path gives the module
# at its new home, with a DeprecationWarning naming it. Written out by hand so that a path dropped by accident fails.
OLD_MODULE_PATHS = {
    "hardmine.table": "hardmine.core.columns",
    "hardmine.data": "hardmine.core.data",
    "hardmine.distributed": "hardmine.core.distributed",
    "hardmine.measures": "hardmine.scoring.measures",
    "hardmine.dense": "hardmine.scoring.dense",
    "hardmine.detection": "hardmine.scoring.detection",
    "hardmine.checkpoint": "hardmine.scoring.checkpoint",
    "hardmine.streamed": "hardmine.scoring.streamed",
    "hardmine.splitting": "hardmine.analysis.splitting",
    "hardmine.metrics": "hardmine.analysis.metrics",
    "hardmine.dynamics": "hardmine.analysis.dynamics",
    "hardmine.labels": "hardmine.analysis.labels",
    "hardmine.io": "hardmine.analysis.io",
    "hardmine.bigtable": "hardmine.analysis.bigtable",
    "hardmine.interactive": "hardmine.analysis.interactive",
    "hardmine.weighting": "hardmine.feedback.weighting",
    "hardmine.sampling": "hardmine.feedback.sampling",
    "hardmine.sharded": "hardmine.feedback.sharded",
    "hardmine.miner": "hardmine.feedback.miner",
    "hardmine.online": "hardmine.feedback.online",
    "hardmine.selection": "hardmine.feedback.selection",
    "hardmine.losses": "hardmine.feedback.losses",
    "hardmine.cli": "hardmine.app.cli",
    "hardmine.images": "hardmine.app.images",
    "hardmine.demo": "hardmine.app.demo",
}
# Public submodules under their old top-level names: no warning.
SILENT_PATHS = {
    "hardmine.plot": "hardmine.analysis.plot",
    "hardmine.plot_dense": "hardmine.analysis.plot_dense",
    "hardmine.tasks": "hardmine.scoring.tasks",
}


@pytest.fixture(scope="module")
def old_path_imports() -> dict:
    """Import every old module path in one fresh interpreter (one torch import, not one per path): per path, whether
    it gave the module at the new path and the warnings its import raised."""
    code = (
        "import importlib, json, warnings\n"
        f"paths = {OLD_MODULE_PATHS!r}\n"
        "out = {}\n"
        "for old, new in paths.items():\n"
        "    with warnings.catch_warnings(record=True) as seen:\n"
        "        warnings.simplefilter('always')\n"
        "        module = importlib.import_module(old)\n"
        "    out[old] = {'same': module is importlib.import_module(new),\n"
        "                'warnings': [(w.category.__name__, str(w.message)) for w in seen]}\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("old", sorted(OLD_MODULE_PATHS))
def test_old_module_path_gives_the_new_module_with_a_warning(old, old_path_imports):
    new = OLD_MODULE_PATHS[old]
    got = old_path_imports[old]
    assert got["same"], f"{old} is not {new}"
    assert [category for category, _ in got["warnings"]] == ["DeprecationWarning"], got["warnings"]
    assert f"the module {old} moved to {new}" in got["warnings"][0][1]


def test_old_module_path_from_import_keeps_working():
    with pytest.warns(DeprecationWarning, match=r"hardmine\.metrics moved to hardmine\.analysis\.metrics"):
        namespace: dict = {}
        exec("import sys; sys.modules.pop('hardmine.metrics', None); from hardmine.metrics import summary", namespace)
    assert namespace["summary"] is hm.summary


@pytest.mark.parametrize("old", sorted(SILENT_PATHS))
def test_public_submodules_answer_at_their_old_names_without_a_warning(old):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(old)
    assert module is importlib.import_module(SILENT_PATHS[old])


def test_score_from_the_scoring_package_warns_and_works():
    with pytest.warns(DeprecationWarning, match=r"hardmine\.scoring\.score moved to hardmine\.scoring\.engine"):
        from hardmine.scoring import score
    assert score is hm.score
