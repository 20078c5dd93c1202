"""Does mining pay? Steps and CPU time to a target accuracy on a redundant task, with and without label noise.

The task (generated deterministically, nothing downloaded): scikit-learn's bundled 8x8 digits, split once by a fixed
permutation into 1,257 training originals and 540 test originals. Every training sample is a training original placed
on a 12x12 canvas under a random affine transform (rotation +-15 degrees, scale 0.85-1.15, shear +-0.15, shift +-1
pixel; bilinear) plus Gaussian pixel noise (sd 0.1 on a [0, 1] scale): ``--train-size`` (30,000) of them, about 24
variants of every original, so most samples repeat what others already teach. The test set is 4 such variants of
each held-out original (2,160 samples, never seen in training, clean labels). A separate held-out split of 3,000 more
variants of the training originals (with the same label noise as the training set) is only for RHO-LOSS's
irreducible-loss model.

A difficulty mixture, ``--hard-share S`` (0 unless set): a random share ``S`` of the images of every set (training,
held-out and test alike; drawn by a generator of its own, seed 9) is transformed twice as strongly (rotation +-30
degrees, scale 0.7-1.3, shear +-0.3, shift +-2 pixels, pixel noise sd 0.2), the others exactly as above, bit for bit:
most samples are learnt early and a minority keeps the model busy, the regime where skipping the learnt ones should
pay. The test accuracy is over the same mixture; every evaluation is also measured on the strongly transformed test
images and on the others apart (the result files' ``runs_hard`` and ``runs_easy``, and a table of their final
accuracies; files made before 2026-12-07 have neither).

Label noise: ``--noise`` (0 %, 20 %, 40 %) of the training labels (and of the held-out split's) are replaced by a
uniformly drawn *other* class, so exactly that share is wrong; the test labels are clean. The seed decides the noise,
the initialisation and the sampling; the images are the same for every seed.

Model: a small CNN (conv 1->16 3x3, ReLU, max-pool 2; conv 16->32 3x3, ReLU, max-pool 2; linear 288->10;
``--width K`` multiplies its channels, the irreducible-loss model staying this one), Adam with
learning rate 2e-3, training batches of 64 samples, ``--epochs`` (8) epochs of uniform shuffling as the budget: every
method takes the same number of gradient steps (``epochs * ceil(N / 64)``), except the pruning methods, which run the
same number of epochs in fewer steps; one torch thread, data in memory, plain DataLoaders without workers.

Methods (``--methods``):

- ``uniform``: a shuffled DataLoader, cross-entropy.
- ``balanced``: class-balanced draws (``WeightedRandomSampler``, weights 1 / class count).
- ``hm-offline``: ``hm.HardMiner`` with its defaults (a scoring pass over the training set at every epoch, counted).
- ``hm-online``: ``hm.HardMiner(rescore_every=None)`` mining from ``miner.observe(idx, logits, y)``: no scoring pass.
- ``selective-backprop``: ``hm.select_batch`` on candidate batches of ``64 / keep`` (``--keep``, 0.25): the 64 with
  the largest loss are trained on (the candidate forward pass is counted).
- ``rho-loss``: ``hm.select_batch(..., irreducible=il[idx])``: the 64 with the largest loss minus irreducible loss;
  ``il`` is ``hm.score(il_model, train_loader)["loss"]`` of the same small CNN trained for ``--il-epochs`` (8) on the
  held-out split (its training and the scoring pass are counted).
- ``ohem``: ``hm.ohem_loss`` (the hardest quarter of every batch of 64).
- ``focal``: ``hm.focal_loss(gamma=2)``.
- ``pruning``: ``hm.PruningSampler(prune=0.5, epochs=epochs)`` (InfoBatch): each epoch after the first, half of
  the samples whose last observed training loss is below the mean are skipped and the kept ones weighted up by 2; the
  last 12.5 % of the epochs use all the data. It runs the same ``--epochs`` epochs as uniform, in fewer steps; no
  extra forward pass (the losses are the training step's own).
  With ``top=K`` (e.g. ``pruning:top=0.8``) the sampler's epochs are drawn in batches of ``64 / K`` and each step trains
  on the 64 largest of their losses (weighted as the sampler says), from the training forward pass itself, as
  ``priority:top=K`` does: an epoch takes ``K`` times the steps, a step costs about ``1 / K`` of one over 64.
  With ``rescale=0`` (e.g. ``pruning:prune=0.6,anneal=0,rescale=0``) the kept low-loss samples are not weighted up:
  every drawn sample has weight 1 (the pruned epochs lean toward the high-loss samples, InfoBatch without its
  rescaling). With ``rho=1`` (e.g. ``pruning:prune=0.6,anneal=0,rho=1``) the sampler observes each sample's
  *reducible* loss, its training loss minus ``il[idx]`` (RHO-LOSS's irreducible loss, from the same model as
  ``rho-loss``, its training and scoring pass counted), so an epoch prunes among the below-mean reducible losses:
  the learnt samples and those the irreducible-loss model finds hard too. The reducible losses are less skewed than
  the losses, so fewer are below their mean and an epoch prunes less; with ``floor=0`` (``rho=1,floor=0``) every
  negative reducible loss (a sample the model fits better than the irreducible-loss model does) counts as 0.
  With ``importance=S`` (e.g. ``pruning:importance=0.47,anneal=0``) the epochs are drawn by :class:`ImportancePruning`
  instead: each observed sample with a probability proportional to its observed loss, floored at ``min_prob`` (0.05)
  and capped at 1, ``S`` of the samples in expectation, weighted ``1 / p`` (importance sampling by the loss, where
  InfoBatch skips a random share of the below-mean losses).
  With ``learnt=P,share=S`` (e.g. ``pruning:learnt=0.99,share=0.45,anneal=0``) they are drawn by
  :class:`LearntPruning`: only samples whose label probability ``exp(-loss)`` is above ``P`` are skipped, at random,
  as many as leave ``S`` of the samples in the epoch (all of them while fewer are learnt), the kept ones of them
  weighted up as InfoBatch's are.
- ``pruning-filter``: the same, plus ``exclude=0.2, warmup_epochs=2``: after two full epochs, the 20 % of the
  samples with the largest observed loss are left out of every epoch (the small-loss trick against wrong labels).
- ``priority``: ``hm.PrioritySampler`` with its defaults (``pressure=1000``, ``half_life=1``): after one full
  epoch, draws with replacement by the rank of each sample's last observed training loss, the hardest 1000 times as
  likely as the easiest, refreshed 32 times an epoch; the same number of steps as uniform, no extra forward pass.
  Variants set ``pressure`` and ``exclude`` (a fraction, or ``auto`` with ``num_classes=10``). With ``keep=K``
  (e.g. ``priority:keep=0.5``) the sampler draws candidate batches of ``64 / K`` and ``hm.select_batch`` trains on
  the 64 with the largest fresh loss (the candidate forward pass is counted); every candidate's fresh loss is
  observed, so the ranking sees ``1 / K`` times as many losses a step. With ``top=K`` (e.g. ``priority:top=0.8``)
  the sampler draws batches of ``64 / K`` and the step trains on the 64 largest of their losses, from the training
  forward pass itself (the others get no gradient, as in OHEM): no extra pass, a step costs ``1 / K`` of a step
  over 64; every loss of the batch is observed. With ``rest=A`` beside ``top=K`` (e.g. ``priority:top=0.8,rest=1``)
  the other candidates are trained on too, each weighted ``A`` against 1 for the 64 largest (the loss is the
  weighted mean): the backward pass runs over every candidate anyway, so the step costs the same; ``rest=1`` is a
  plain step over the ``64 / K`` samples the sampler drew, ``rest=0`` (the default) is ``top=K`` alone.
- ``elr=BETA`` (an option of ``uniform`` and ``priority``, e.g. ``uniform:elr=0.9`` or
  ``priority:pressure=10,exclude=0.4,elr=0.9``): train on ``hm.EarlyLearningLoss(beta=BETA, lam=3)`` (early-learning
  regularization, Liu et al. 2020) instead of the plain cross-entropy; the sampler still observes the plain
  per-sample cross-entropy.
- ``priority-oracle``: not a method, a ceiling. ``hm.PrioritySampler`` (``pressure=10`` unless set) told which
  labels the benchmark flipped, and excluding exactly those: how far perfect detection of the wrong labels would go.

Measured for every run: test accuracy every ``--eval-every`` gradient steps against the steps taken and the process
CPU time spent (``time.process_time``, the evaluations themselves excluded; every forward pass, every scoring and
selection pass and the irreducible-loss model's training included). Reported per method, over seeds: the final test
accuracy and its difference to uniform (paired by seed), the accuracy at uniform's CPU budget (the last evaluation
whose CPU time does not exceed uniform's total on that seed), and the steps and CPU time to first reach uniform's final
accuracy (the mean of uniform's last two evaluations on that seed) as a fraction of uniform's own steps and CPU time to
first reach it (the strict measure: uniform's curve fluctuates with a constant learning rate and often touches its
final accuracy early) and as a fraction of uniform's whole budget (3,752 steps, and its total CPU time).

The test set's size, and the noise of the measure. 2,160 test images move the accuracy by about half a point from one
evaluation to the next, and the steps to *first* reach uniform's final accuracy are sensitive to that noise: a noisy
evaluation lifts uniform to its own final accuracy early (which makes every ratio larger) and a method to it early
(which makes its ratio smaller). ``--test-variants K`` (``K > 4``) measures every evaluation on ``540 * K`` test
images instead: the default 2,160 first, then ``K - 4`` more variants of each held-out original (affine transforms and
pixel noise from a generator of their own, seed 8). Each run is then also measured on the default 2,160 alone, from
the same evaluations (the result files' ``runs_base`` and ``summary_base``, and a second table), so the two yardsticks
compare the same runs. The training is unchanged: an evaluation draws no random numbers. ``bench_selection_test10800``
pools four such runs (20 seeds from ``--first-seed 0``, also with ``priority`` and kept whole as
``bench_selection_test10800_sampler``; 20 from 20; 10 from 40 and 10 from 50, run afterwards as a check)::

    python benchmarks/bench_selection.py --noise 0.0 --seeds 20 --eval-every 67 --test-variants 20 \\
        --methods uniform priority:top=0.8 priority --stem a --out /tmp/r

Methods that need the batch's dataset indices get them from ``hm.with_indices(loader)``, as the guides show. Result
files made before 2026-12-05 carried them as an extra ``torch.arange`` column of the dataset instead: the same batches
and curves, about 0.1 to 0.2 ms a step more CPU (on this benchmark's CPU: the plain sampler at 40 % noise 3.53 against
3.34 ms, uniform 3.09 and 3.04, one seed each).

On a GPU, ``--device cuda``: the training set, the test set, the model and every step live on the GPU, and batches
are drawn by indexing the whole tensors there (``IndexedBatches``: the ``DataLoader``'s batches from the same random
draws, one indexing a batch instead of a fetch per sample; on the CPU both give the same curve, bit for bit, as the
tests check). The "CPU" columns then hold the GPU run's wall-clock seconds, the device synchronised at every reading,
the evaluations excluded; the machine line names the GPU. ``hm-offline``, ``hm-online`` and ``rho-loss`` (and
``pruning``'s ``rho=1``), which train or score through a ``DataLoader`` of their own, are refused there. Where a
larger batch costs about what a smaller one does, drawing 96 for steps of 64 should cost about as much time as its
steps say, plus the sampler's own work on the host, which does not shrink with the device: on this benchmark's CPU
about 0.24 ms a step (``observe`` 0.06 ms for 64 losses; the draws 0.18 ms per 64 indices, most of it the 32
refreshes an epoch, about 2 ms each for 30,000 samples), a large share of a small CNN's step on a GPU, so read the
GPU's time ratios with uniform's milliseconds per step beside them. The check prepared for a GPU (not run yet: no
GPU was lent to the sessions that wrote it; a few minutes by estimate, 30 runs of 3,752 small steps), which
``.ci/gpu`` runs after the CUDA tests (CONTRIBUTING.md)::

    python benchmarks/bench_selection.py --device cuda --noise 0.0 --seeds 10 --eval-every 67 --test-variants 20 \
        --methods uniform priority:top=0.8 priority:top=0.667 --stem bench_selection_cuda --out $OUT

Results are saved after every seed (all methods), so a run stopped early still reports the seeds it finished. Run
``nice python benchmarks/bench_selection.py`` (every noise level, 5 seeds; about an hour of one idle CPU core), or one
process per noise level and then ``--merge`` (as the committed results were made, on a shared machine)::

    for n in 0.0 0.2 0.4; do nice python benchmarks/bench_selection.py --noise $n --stem noise$n --out /tmp/r & done
    wait; python benchmarks/bench_selection.py --merge /tmp/r/noise0.0.json /tmp/r/noise0.2.json /tmp/r/noise0.4.json

More seeds, run in parallel by ``--first-seed``, pool into one table with ``--concat-seeds`` (the methods every file
ran; each seed against its own uniform run), as ``bench_selection_seeds20`` was made::

    python benchmarks/bench_selection.py --noise 0.0 --seeds 10 --methods uniform priority --stem a --out /tmp/r &
    python benchmarks/bench_selection.py --noise 0.0 --seeds 10 --first-seed 10 --methods uniform priority \\
        --stem b --out /tmp/r &
    wait; python benchmarks/bench_selection.py --concat-seeds /tmp/r/a.json /tmp/r/b.json --stem bench_selection_seeds20

Is the baseline tuned, and what does a learning-rate schedule change? ``--lr`` sets Adam's learning rate (2e-3) for
every method (a method's option ``lr=`` sets its own, e.g. ``pruning:lr=6e-3`` beside uniform at ``--lr``),
``--schedule cosine`` anneals it to 0 over each run's budget, and a method written ``name@b`` runs for
the fraction ``b`` of the budget (its own cosine schedule ends there), so ``priority@0.5`` against ``uniform`` asks
whether half the steps match uniform's full run. The option ``batch=B`` of ``uniform`` and ``pruning`` trains every
step on ``B`` samples instead of 64, the budget still counted in steps of 64 (``uniform:batch=80@0.5``: half of
uniform's steps, each on 80 samples; a pruning run's epochs drawn in batches of ``B``)::

    nice python benchmarks/bench_selection.py --noise 0.0 --schedule cosine \\
        --methods uniform@0.5 uniform@0.75 priority@0.5 priority@0.75 priority --stem bench_selection_cosine

``--schedule wsd`` keeps the rate constant, then decays it linearly to 0 over the last 20 % (``--cooldown``) of each
run's own budget (a cooldown; warmup-stable-decay without the warm-up), and ``priority:cool=1`` lowers the sampler's
pressure with it, geometrically to 1 (uniform draws) at the last step. The pruning methods, which run their epochs in
fewer steps, follow a schedule by the epochs they have run, so their last epoch ends it too (InfoBatch's authors
advise fitting a schedule to the pruned steps). The runs that found uniform's best rate under it::

    nice python benchmarks/bench_selection.py --noise 0.0 --seeds 20 --eval-every 67 --test-variants 20 \\
        --schedule wsd --lr 4e-3 --methods uniform priority:top=0.8@0.5 priority:top=0.8@0.6 \\
        --stem bench_selection_wsd_lr4e-3

``--quick`` is a smoke run (seconds). Results: ``benchmarks/results/bench_selection.{json,md}`` (the earlier 2-epoch
budget: ``bench_selection_2epochs.*``; the learning rates 4e-3 and 1e-3: ``bench_selection_lr4e-3.*`` and
``bench_selection_lr1e-3.*``; the cosine schedule and its budget sweep: ``bench_selection_cosine.*``; the oracle
ceiling at 40 % noise: ``bench_selection_oracle.*``; ``PrioritySampler`` with 8 refreshes an epoch, the default
before, and other options: ``bench_selection_priority_options.*``; 20 seeds on clean labels, one run at a time and
two at a time: ``bench_selection_seeds20.*``, ``bench_selection_seeds20_parallel.*``; 10 seeds at 40 % noise with
the oracle: ``bench_selection_noise40_seeds10.*``; ``warmup_epochs=0`` and ``half_life=None`` on 10 seeds:
``bench_selection_options_seeds10.*``; early-learning regularization, 10 seeds at 40 % and 5 clean:
``bench_selection_elr.*``; fresh losses, ``priority:top=0.8`` and ``priority:keep=0.8``, 20 seeds clean and
10 at 40 %: ``bench_selection_fresh.*``; the recipe, the sampler and the 40 % noise methods evaluated every 67 steps on
10,800 test images (``--test-variants 20``): ``bench_selection_test10800*.*``, among them drawing 96 for steps of 64
(``priority:top=0.667``) beside 80, 40 seeds decided beforehand and 100 in all: ``..._draw96.*``, ``..._draw96_all.*``;
the candidates the top-k leaves out trained on too (``rest=0.3`` and ``rest=1``), 10 seeds: ``..._rest.*``;
the cooldown (``--schedule wsd``) at
Adam 2e-3 to 6e-3, clean and at 40 % noise: ``bench_selection_wsd*.*``; among them the pruning sampler on it,
``bench_selection_wsd_lr*_pruning.*`` and ``bench_selection_wsd_noise40_pruning.*``, and a 40 % cooldown,
``bench_selection_wsd_cooldown0.4_*.*``, and lower pressures at 40 % noise,
``bench_selection_wsd_noise40_pressure.*``; three times the budget (``--epochs 24``), clean and at 40 % noise, with
uniform's learning rate checked there: ``bench_selection_epochs24*.*``, among them the clean rows that decide the
targets over 24 seeds, ``bench_selection_epochs24_clean_seeds24.*``, longer annealing for the pruning sampler,
``bench_selection_epochs24_pruning_anneal.*``, ``exclude="auto"`` at 0, 20 and 40 % noise,
``bench_selection_epochs24_auto.*``, the exclusion with early-learning regularization at 40 %, 12 seeds,
``bench_selection_epochs24_noise40_elr.*``, 24 more seeds of the clean rows that decide the targets,
``bench_selection_epochs24_clean_seeds24_47.*``, and other ways to spend half the steps, ``prune=0.6`` and
``pruning:top=0.8``, ``bench_selection_epochs24_pruning_variants.*``, a higher rate,
``bench_selection_epochs24_pruning_lr6e-3.*``, ``prune=0.6, anneal=0`` on all the epochs, 48 seeds,
``bench_selection_epochs24_pruning_no_anneal.*``, and InfoBatch's defaults on all of them, 24 seeds,
``bench_selection_epochs24_pruning_full.*``, pruning more on more epochs without annealing, ``prune=0.7`` on 29
epochs, 48 seeds, ``bench_selection_epochs24_pruning_prune70.*``, and ``prune=0.8`` on 38, 48 seeds,
``bench_selection_epochs24_pruning_prune80.*``, and both without the rescaling (``rescale=0``), 10 seeds,
``bench_selection_epochs24_pruning_rescale.*``, pruning by the reducible loss (``rho=1``), floored at 0, 12 seeds,
``bench_selection_epochs24_pruning_rho.*``, and not floored, with the 2 % largest losses excluded beside it, 4 seeds,
``bench_selection_epochs24_pruning_rho_unfloored.*``, and ``prune=0.6, anneal=0`` at Adam 3e-3, 6 seeds,
``bench_selection_epochs24_pruning_lr3e-3.*``, and the CNN twice as wide (``--width 2``), 24 seeds,
``bench_selection_epochs24_width2.*``, and importance sampling by the loss (``importance=0.47``) beside
``prune=0.6, anneal=0`` on an Intel Xeon, 48 seeds, ``bench_selection_epochs24_importance.*``, with
``min_prob=0.2``, 12 seeds, ``bench_selection_epochs24_importance_floor.*``, and only the learnt samples skipped
(``learnt=0.99,share=0.45``), 24 seeds, ``bench_selection_epochs24_learnt.*``, and steps of 80 and 96 samples
(``batch=80``, ``batch=96``), uniform on half the steps and ``prune=0.6, anneal=0``, 48 seeds,
``bench_selection_epochs24_batch80.*`` and ``bench_selection_epochs24_batch96.*``, and steps of 96 at Adam 5e-3
(``batch=96,lr=5e-3``), 48 seeds, ``bench_selection_epochs24_batch96_lr5e-3.*``, and ``PrioritySampler`` at
pressure 3 and 10 on half the steps, 24 seeds, ``bench_selection_epochs24_priority.*``; twice the data at the same steps
(``--train-size 60000 --epochs 12``), 12 seeds, uniform, its half and ``prune=0.6, anneal=0``,
``bench_selection_epochs12_train60k.*``; a difficulty mixture (``--hard-share 0.3``), 12 seeds, the same three,
``bench_selection_epochs24_mixture.*``, and on the 8-epoch cooldown, 24 seeds, with InfoBatch's defaults and uniform
planned for the steps of both pruning settings, ``bench_selection_wsd_lr4e-3_mixture.*`` and
``bench_selection_wsd_lr4e-3_mixture_uniform.*``, and seeds 0 to 11 of both again with the hard and the other test
images measured apart, ``bench_selection_wsd_lr4e-3_mixture_parts.*``; twice the budget (``--epochs 16``), 24
seeds, uniform, its half and two pruning settings: ``bench_selection_epochs16.*``; and on the 8-epoch cooldown
``prune=0.6, anneal=0``, ``bench_selection_wsd_lr4e-3_pruning_no_anneal.*``, with uniform planned for the same steps,
``bench_selection_wsd_lr4e-3_uniform_planned.*``) (``bench_selection_quick.*`` with ``--quick``; or ``--out DIR`` and
``--stem``).
``--methods`` also takes variants with options, e.g. ``selective-backprop:keep=0.5`` or
``hm-online:balance=None,hard_weight=8``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import RESULTS, save_results
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, TensorDataset, WeightedRandomSampler

import hardmine as hm

METHODS = (
    "uniform",
    "balanced",
    "hm-offline",
    "hm-online",
    "selective-backprop",
    "rho-loss",
    "ohem",
    "focal",
    "pruning",
    "pruning-filter",
    "priority",
    "priority-oracle",
)
#: The methods ``--device cuda`` runs: those whose batches :class:`IndexedBatches` can draw.
ACCELERATED = tuple(m for m in METHODS if m not in ("hm-offline", "hm-online", "rho-loss"))
NUM_CLASSES = 10
BATCH = 64
LR = 2e-3
EVAL_EVERY = 235  # the test accuracy is measured every 235 steps (16 times in the 3,752 steps of 8 epochs)
TEST_ORIGINALS = 540  # the held-out digit originals the test images are made from
TEST_VARIANTS = 4  # variants of every held-out original in the test set: 2,160 images
BASE_TEST_SIZE = TEST_VARIANTS * TEST_ORIGINALS  # the default test set; a larger one (--test-variants) starts with it
SIDE = 12
SCHEDULES = ("constant", "cosine", "wsd")
HARD_STRENGTH = 2.0  # --hard-share: those samples' rotation, scale deviation, shear, shift and pixel noise, doubled
COOLDOWN = 0.2  # --schedule wsd: the last fifth of each run's budget decays the learning rate linearly to 0


def schedule_note(schedule: str, cooldown: float = COOLDOWN) -> str:
    """The setup line's words for ``schedule``; ``"wsd"`` names its cooldown's share of each run."""
    if schedule == "wsd":
        return f" (constant, then linear to 0 over the last {cooldown:.0%} of each run)"
    return " (cosine to 0)" if schedule == "cosine" else ""


# ---------------------------------------------------------------------------------------------------- data


def _affine(images: torch.Tensor, g: torch.Generator, strength: torch.Tensor | None = None) -> torch.Tensor:
    """Random affine transforms of ``(M, 1, 8, 8)`` images onto a ``(M, 1, 12, 12)`` canvas, plus pixel noise.

    ``strength`` (``(M,)`` float, 1 where ``None``) multiplies each image's rotation, scale deviation, shear, shift and
    pixel noise; the random draws are the same whatever it is.
    """
    m = images.shape[0]
    k = torch.ones(m) if strength is None else strength
    canvas = F.pad(images, (2, 2, 2, 2))
    angle = (torch.rand(m, generator=g) * 2 - 1) * math.radians(15) * k
    scale = 0.85 + torch.rand(m, generator=g) * 0.3
    if strength is not None:  # only here: 1 + (scale - 1) * 1 is not bit for bit the default's scale
        scale = 1.0 + (scale - 1.0) * k
    shear = (torch.rand(m, generator=g) * 2 - 1) * 0.15 * k
    shift = (torch.rand(m, 2, generator=g) * 2 - 1) * (2.0 / SIDE) * k[:, None]  # +-1 pixel in normalised coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [m, 1, SIDE, SIDE], align_corners=False)
    out = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (out + 0.1 * k[:, None, None, None] * torch.randn(out.shape, generator=g)).to(torch.float32)


def _strength(m: int, hard_share: float, g: torch.Generator) -> torch.Tensor | None:
    """``(m,)`` transform strengths: :data:`HARD_STRENGTH` for a random ``hard_share`` of them, 1 for the others."""
    if hard_share == 0.0:
        return None
    return 1.0 + (HARD_STRENGTH - 1.0) * (torch.rand(m, generator=g) < hard_share).float()


def make_images(
    train_size: int = 30_000,
    holdout_size: int = 3_000,
    test_variants: int = TEST_VARIANTS,
    hard_share: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The images and clean labels of the training, held-out (for RHO-LOSS) and test sets; the same for every seed.

    ``test_variants`` (``>= 4``) variants of each of the 540 held-out originals make the test set. The first 4 are
    always the same 2,160 images (the default test set); the others come after them, from a generator of their own.
    ``hard_share`` (``[0, 1]``) of the images of every set, drawn at random (a generator of their own, seed 9), are
    transformed :data:`HARD_STRENGTH` times as strongly; at 0 the images are the default task's, bit for bit. The
    result's ``hard_train`` and ``hard_test`` say which.
    """
    if test_variants < TEST_VARIANTS:
        raise ValueError(f"`test_variants` must be at least {TEST_VARIANTS}, got {test_variants}")
    if not 0.0 <= hard_share <= 1.0:
        raise ValueError(f"`hard_share` must be in [0, 1], got {hard_share}")
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(2024))
    train_orig, test_orig = order[:1257], order[1257:]
    g = torch.Generator().manual_seed(7)
    gh = torch.Generator().manual_seed(9)
    pick = train_orig[torch.arange(train_size) % len(train_orig)]
    hold = train_orig[torch.randint(0, len(train_orig), (holdout_size,), generator=g)]
    test = test_orig.repeat(TEST_VARIANTS)
    k_train, k_hold, k_test = (_strength(n, hard_share, gh) for n in (len(pick), len(hold), len(test)))
    data = {
        "x_train": _affine(x[pick], g, k_train),
        "y_train": y[pick],
        "x_hold": _affine(x[hold], g, k_hold),
        "y_hold": y[hold],
        "x_test": _affine(x[test], g, k_test),
        "y_test": y[test],
    }
    if test_variants > TEST_VARIANTS:  # more variants of the same originals, after the default test set's
        more = test_orig.repeat(test_variants - TEST_VARIANTS)
        k_more = _strength(len(more), hard_share, gh)
        data["x_test"] = torch.cat([data["x_test"], _affine(x[more], torch.Generator().manual_seed(8), k_more)])
        data["y_test"] = torch.cat([data["y_test"], y[more]])
        k_test = None if k_test is None or k_more is None else torch.cat([k_test, k_more])
    if k_train is not None and k_test is not None:
        data["hard_train"], data["hard_test"] = k_train > 1.0, k_test > 1.0
    return data


def add_noise(labels: torch.Tensor, rate: float, g: torch.Generator) -> torch.Tensor:
    """A copy of ``labels`` with ``round(rate * N)`` of them, chosen at random, moved to another random class."""
    y = labels.clone()
    k = round(rate * len(y))
    where = torch.randperm(len(y), generator=g)[:k]
    y[where] = (y[where] + torch.randint(1, NUM_CLASSES, (k,), generator=g)) % NUM_CLASSES
    return y


def make_model(seed: int, width: int = 1) -> nn.Module:
    """The small CNN; ``width`` multiplies its channels (16 and 32 at 1)."""
    torch.manual_seed(seed)  # the benchmark owns this process: initialisation follows the seed
    return nn.Sequential(
        nn.Conv2d(1, 16 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16 * width, 32 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * width * 3 * 3, NUM_CLASSES),
    )


# ---------------------------------------------------------------------------------------------------- training


class OracleExclusion(hm.PrioritySampler):
    """``PrioritySampler`` that excludes exactly the flipped labels it is told of (a ceiling, not a method)."""

    def __init__(self, data_source: int, *, wrong: torch.Tensor, **kwargs: Any) -> None:
        super().__init__(data_source, **kwargs)
        self.wrong = wrong

    @property
    def excludes(self) -> bool:
        return True

    def _excluded(self, loss: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:  # the truth instead
        return self.wrong & torch.isfinite(loss)


class _RulePruning(hm.PruningSampler):
    """``PruningSampler`` with another rule for its pruned epochs: :meth:`_prune` weights the usable samples.

    The warm-up, the annealing, the exclusion, the merge across ranks, the seed and the order stay
    ``PruningSampler``'s; so does every epoch that does not prune.
    """

    def _prune(self, loss: torch.Tensor, weights: torch.Tensor, usable: torch.Tensor, g: torch.Generator) -> None:
        """Set ``weights`` (float32 ``(N,)``, 0 for a skipped sample) of ``usable`` (bool ``(N,)``) from ``loss``."""
        raise NotImplementedError

    def plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.pruning_active(epoch):
            return super().plan(epoch)
        self.observed.merge_ranks()
        weights = torch.ones(self.num_samples, dtype=torch.float32)
        g = torch.Generator().manual_seed(self.seed + epoch)
        loss = self._losses(epoch).to(torch.float64)
        if self.excludes:
            weights[self._excluded(loss)] = 0.0
        self._prune(loss, weights, torch.isfinite(loss) & (weights > 0), g)
        order = (weights > 0).nonzero()[:, 0]
        if self.shuffle:
            order = order[torch.randperm(order.numel(), generator=g)]
        return order, weights


class ImportancePruning(_RulePruning):
    """``PruningSampler`` that draws each observed sample with a probability proportional to its loss (a variant).

    After the warm-up, while pruning is active, observed sample ``i`` (not excluded) is drawn with probability
    ``p_i = clamp(c * loss_i, min_prob, 1)``, ``c`` found by bisection so that ``sum(p_i)`` is ``importance`` times
    the number of such samples, and a drawn sample is weighted ``1 / p_i``: importance sampling by the loss, an upper
    bound of the gradient's norm for a well-learnt sample under cross-entropy (Katharopoulos and Fleuret, 2018), so
    an epoch's expected gradient is the full data's. Where InfoBatch skips a random share of every below-mean loss,
    this skips the best-learnt samples most. The floor keeps every weight at most ``1 / min_prob`` and every stale
    loss drawn again within about ``1 / min_prob`` epochs.
    """

    def __init__(self, data_source: int, *, importance: float, min_prob: float = 0.05, **kwargs: Any) -> None:
        super().__init__(data_source, **kwargs)
        if not 0.0 < importance <= 1.0:
            raise ValueError(f"`importance` must be in (0, 1], got {importance!r}")
        if not 0.0 < min_prob <= importance:
            raise ValueError(f"`min_prob` must be in (0, importance], got {min_prob!r}")
        self.importance = float(importance)
        self.min_prob = float(min_prob)

    def _prune(self, loss: torch.Tensor, weights: torch.Tensor, usable: torch.Tensor, g: torch.Generator) -> None:
        index = usable.nonzero()[:, 0]
        score = loss[index].clamp_min(0)
        target = self.importance * index.numel()
        lo, hi = 1e-12, 1e12  # sum(clamp(c * score, min_prob, 1)) grows with c: bisect on a log scale
        for _ in range(200):
            c = (lo * hi) ** 0.5
            if (score * c).clamp(self.min_prob, 1).sum().item() > target:
                hi = c
            else:
                lo = c
        prob = (score * hi).clamp(self.min_prob, 1)
        drawn = torch.rand(index.numel(), generator=g, dtype=torch.float64) < prob
        weights[index[~drawn]] = 0.0
        weights[index[drawn]] = (1.0 / prob[drawn]).float()


class LearntPruning(_RulePruning):
    """``PruningSampler`` that skips only learnt samples, as many of them as an epoch's share allows (a variant).

    After the warm-up, while pruning is active, the observed samples (not excluded) whose label probability
    ``exp(-loss)`` is above ``learnt`` (0.99: a loss below 0.01) make the pool, where InfoBatch's is the losses below
    their mean; ``d = min(m, round((1 - share) * n))`` of the pool's ``m`` samples, chosen at random, are left out of
    the epoch (``n`` the observed, not excluded samples), and the pool's kept ones are weighted ``m / (m - d)``, so an
    epoch draws ``share`` of them once enough are learnt, and more while fewer are.
    """

    def __init__(self, data_source: int, *, learnt: float, share: float, **kwargs: Any) -> None:
        super().__init__(data_source, **kwargs)
        if not 0.0 < learnt < 1.0:
            raise ValueError(f"`learnt` must be in (0, 1), got {learnt!r}")
        if not 0.0 < share <= 1.0:
            raise ValueError(f"`share` must be in (0, 1], got {share!r}")
        self.learnt = float(learnt)
        self.share = float(share)

    def _prune(self, loss: torch.Tensor, weights: torch.Tensor, usable: torch.Tensor, g: torch.Generator) -> None:
        pool = (usable & (loss < -math.log(self.learnt))).nonzero()[:, 0]
        dropped = min(pool.numel(), round((1.0 - self.share) * int(usable.sum())))
        if dropped:
            pick = torch.randperm(pool.numel(), generator=g)
            weights[pool[pick[:dropped]]] = 0.0
            if dropped < pool.numel():
                weights[pool[pick[dropped:]]] = pool.numel() / (pool.numel() - dropped)


class Clock:
    """Time spent training: :meth:`pause` around the evaluations.

    On the CPU, process CPU time. On an accelerator (``device``), wall-clock time with the device synchronised at
    every pause, resume and reading, so the work queued by the training steps is counted and the evaluations' is not.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.spent = 0.0
        self._start: float | None = self._read()

    def _read(self) -> float:
        if self.device.type == "cpu":
            return time.process_time()
        torch.accelerator.synchronize(self.device)
        return time.perf_counter()

    def pause(self) -> None:
        if self._start is not None:
            self.spent += self._read() - self._start
            self._start = None

    def resume(self) -> None:
        self._start = self._read()

    def now(self) -> float:
        return self.spent + (self._read() - self._start if self._start is not None else 0.0)


class IndexedBatches:
    """The batches of ``DataLoader(TensorDataset(x, y), batch_size, sampler=sampler)``, by indexing whole tensors.

    The same indices in the same batches, from the same random draws (a pass first draws the ``DataLoader``'s base
    seed from ``generator``, as the ``DataLoader`` does), but each batch is one indexing of ``x`` and ``y`` on their
    device instead of a fetch and a collation per sample: what a training loop on a GPU does with data that fits in
    its memory. With ``with_indices``, batches are ``(idx, x, y)`` with ``idx`` on the tensors' device, as
    :func:`hardmine.with_indices` makes them.

    Args:
        x, y: the samples and labels, on one device, ``N`` rows each.
        batch_size: samples per batch.
        sampler: the dataset indices of a pass; ``None``: a shuffled pass drawn from ``generator``
            (``DataLoader(..., shuffle=True, generator=generator)``).
        generator: the ``DataLoader``'s generator (``None``: torch's global one).
        drop_last: drop a last incomplete batch.
        with_indices: yield ``(idx, x, y)`` instead of ``(x, y)``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        sampler: Sampler[int] | None = None,
        *,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        with_indices: bool = False,
    ) -> None:
        self.x, self.y, self.generator, self.with_indices = x, y, generator, with_indices
        sampler = RandomSampler(range(len(y)), generator=generator) if sampler is None else sampler
        self.batches = BatchSampler(sampler, batch_size, drop_last)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the DataLoader's base seed
        for batch in self.batches:
            idx = torch.tensor(batch, dtype=torch.int64).to(self.y.device, non_blocking=True)
            x, y = self.x[idx], self.y[idx]
            yield (idx, x, y) if self.with_indices else (x, y)


def fused_loss(
    losses: torch.Tensor, keep: int, *, rest: float = 0.0, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The loss of a ``top=K`` step: the mean of the ``keep`` largest of the candidates' ``losses`` ``(B,)``.

    Each multiplied by its sampler weight (``weights``, ``(B,)``, or ``None``). With ``rest > 0`` (``top=K,rest=A``)
    every other candidate is trained on too, weighted ``rest`` against 1: the weighted mean
    ``sum(w * weights * losses) / sum(w)``; ``rest=1`` is the plain mean over all ``B``.

    >>> loss = fused_loss(torch.tensor([1.0, 4.0, 2.0, 3.0]), 2, rest=0.5)
    >>> round(float(loss), 6) == round((4 + 3 + 0.5 * (1 + 2)) / 3, 6)
    True
    """
    top = losses.detach().topk(min(keep, len(losses))).indices
    if not rest:
        return losses[top].mean() if weights is None else (losses[top] * weights[top]).mean()
    w = torch.full_like(losses, rest).index_fill_(0, top, 1.0)
    return (losses * (w if weights is None else w * weights)).sum() / w.sum()


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bool ``(M,)``: which test images the model classifies right (eval mode, no gradients)."""
    was = model.training
    model.eval()
    with torch.inference_mode():
        right = torch.cat([model(x[i : i + 1024]).argmax(1) == y[i : i + 1024] for i in range(0, len(y), 1024)])
    model.train(was)
    return right


def scheduled_lr(schedule: str, lr: float, step: int, total_steps: int, cooldown: float = COOLDOWN) -> float:
    """The learning rate of ``step`` (0-based) in a run of ``total_steps``.

    ``"constant"`` keeps ``lr``; ``"cosine"`` anneals it from ``lr`` to 0 over the run; ``"wsd"`` (warmup-stable-decay,
    here without warm-up) keeps ``lr`` until the last ``cooldown`` (a fraction, ``COOLDOWN`` by default) of the run,
    then decays it linearly to 0, so that its last step takes ``lr / cooldown_steps``.

    >>> [round(scheduled_lr("wsd", 1.0, s, 10), 2) for s in (0, 7, 8, 9)]
    [1.0, 1.0, 1.0, 0.5]
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "wsd":
        steps = max(1, round(cooldown * total_steps))
        start = total_steps - steps
        return lr if step < start else lr * (total_steps - step) / steps
    raise ValueError(f"Expected schedule in {SCHEDULES}, got {schedule!r}.")


def _forever(loader: Any) -> Iterator[Any]:
    while True:
        yield from loader


class EpochProgress:
    """How far a sampler-driven run is through its epochs, for a schedule over epochs rather than steps.

    The pruning methods run uniform's epochs in fewer steps, so their learning rate follows the epochs (InfoBatch's
    authors advise fitting a schedule to the pruned steps): at batch ``done`` of the ``batches`` of epoch ``epoch``
    the run is ``epoch + done / batches`` epochs in.
    """

    def __init__(self) -> None:
        self.epoch, self.batches, self.done = 0, 1, 0

    def epochs_done(self) -> float:
        return self.epoch + self.done / self.batches


def _epochs(
    loader: Any,
    sampler: hm.PruningSampler | hm.PrioritySampler,
    epochs: int,
    progress: EpochProgress | None = None,
) -> Iterator[Any]:
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        if progress is not None:  # the epoch's plan is built here from the losses so far, as the pass would build it
            progress.epoch, progress.batches, progress.done = epoch, max(1, len(loader)), 0
        for batch in loader:
            yield batch
            if progress is not None:
                progress.done += 1


def train_il_model(data: dict[str, torch.Tensor], y_hold: torch.Tensor, seed: int, epochs: int) -> nn.Module:
    """The irreducible-loss model: the same small CNN trained on the held-out split alone."""
    model = make_model(seed + 10_000)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed + 10_000)
    loader = DataLoader(TensorDataset(data["x_hold"], y_hold), batch_size=BATCH, shuffle=True, generator=g)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return model


def irreducible_losses(
    data: dict[str, torch.Tensor], y_hold: torch.Tensor, train_set: TensorDataset, seed: int, epochs: int
) -> torch.Tensor:
    """RHO-LOSS's irreducible losses: :func:`train_il_model`'s loss on every training sample, float32 ``(N,)``."""
    il_model = train_il_model(data, y_hold, seed, epochs)
    scores = hm.score(il_model, DataLoader(train_set, batch_size=1024), progress=False)
    return torch.tensor(scores["loss"].to_numpy(), dtype=torch.float32)


def run(
    method: str,
    data: dict[str, torch.Tensor],
    *,
    noise: float,
    seed: int,
    epochs: int,
    eval_every: int,
    keep: float,
    il_epochs: int,
    options: dict[str, Any] | None = None,
    budget: float = 1.0,
    schedule: str = "constant",
    lr: float = LR,
    cooldown: float = COOLDOWN,
    width: int = 1,
    device: torch.device | str = "cpu",
    indexed: bool | None = None,
) -> dict[str, Any]:
    """Train one method on one seed; returns the curve ``(steps, cpu seconds, test accuracy)``.

    On an accelerator (``device``), the data, the model and the training run there, batches are drawn by
    :class:`IndexedBatches` (the same batches as on the CPU, one indexing each), and the seconds are :class:`Clock`'s
    synchronised wall-clock time. ``indexed`` (default: on an accelerator) draws the batches that way on the CPU too
    (the same curve of steps and accuracies as the ``DataLoader``; only the time differs). The methods built on a
    ``DataLoader`` of their own (``hm-offline``, ``hm-online``, ``rho-loss`` and ``pruning``'s ``rho=1``) run
    on the CPU's ``DataLoader`` only.

    With a test set larger than the default 2,160 images (``make_images(test_variants=...)``), ``curve_base`` is the
    same curve measured on those first 2,160 images alone (the same evaluations of the same run). On a difficulty
    mixture (``make_images(hard_share=...)``), ``curve_hard`` and ``curve_easy`` are the same curve measured on the
    strongly transformed test images and on the others.

    ``budget`` scales the step budget (``epochs * ceil(N / 64)``); ``schedule="cosine"`` anneals the learning rate
    from ``lr`` to 0 over that budget (``"constant"`` keeps ``lr``; ``"wsd"`` decays it over the last ``cooldown``
    of the budget). The pruning methods, which take fewer steps than their epochs' budget, follow the schedule by
    the epochs they have run (:class:`EpochProgress`), so their last epoch ends the schedule too. ``width``
    multiplies the trained CNN's channels (the irreducible-loss model stays the small one).
    """
    options = dict(options or {})
    dev = torch.device(device)
    indexed = dev.type != "cpu" if indexed is None else indexed
    if indexed and (method in ("hm-offline", "hm-online", "rho-loss") or options.get("rho")):
        raise ValueError(
            f"{method} {options} trains or scores through a DataLoader of its own; it runs on the CPU without "
            f"indexed batches, not on {dev} (indexed={indexed})."
        )
    lr = float(options.pop("lr", lr))  # a method's own rate, e.g. "pruning:lr=6e-3" beside uniform at --lr
    elr_beta = options.pop("elr", None)
    cool = bool(options.pop("cool", 0))  # priority:cool=1: the pressure falls to 1 with the wsd cooldown's rate
    batch = int(options.pop("batch", BATCH))  # uniform:batch=B / pruning:batch=B: B samples a step
    if batch != BATCH and (method not in ("uniform", "pruning") or "top" in options):
        raise ValueError(f"The batch option is for uniform and pruning (without top=), not {method!r} {options}.")
    if batch < 1:
        raise ValueError(f"batch must be a positive number of samples, got {batch}.")
    if cool and (method != "priority" or schedule != "wsd"):
        raise ValueError(f"The cool option is for priority under --schedule wsd, not {method!r} under {schedule!r}.")
    g_noise = torch.Generator().manual_seed(1_000 + seed)
    y_train = add_noise(data["y_train"], noise, g_noise)
    y_hold = add_noise(data["y_hold"], noise, g_noise)
    train_set = TensorDataset(data["x_train"], y_train)
    x_dev, y_dev = data["x_train"].to(dev), y_train.to(dev)
    x_test, y_test = data["x_test"].to(dev), data["y_test"].to(dev)

    def batches(size: int, sampler: Sampler[int] | None = None, **kw: Any) -> Any:
        """The method's loader: ``DataLoader`` (``with_indices=True``: :func:`hm.with_indices`), or ``IndexedBatches``.

        ``kw``: ``generator``, ``drop_last`` and ``with_indices``, as :class:`IndexedBatches` takes them.
        """
        if indexed:
            return IndexedBatches(x_dev, y_dev, size, sampler, **kw)
        with_indices = kw.pop("with_indices", False)
        loader = DataLoader(train_set, batch_size=size, sampler=sampler, shuffle=sampler is None, **kw)
        return hm.with_indices(loader) if with_indices else loader

    n = len(y_train)
    epoch_steps = math.ceil(n / BATCH)  # a full epoch; a pruning run's schedule spans its epochs in these steps
    total_steps = max(1, round(budget * epochs * epoch_steps))
    epochs = math.ceil(total_steps / epoch_steps)  # the epochs a sampler-driven loop needs
    clock = Clock(dev)
    g = torch.Generator().manual_seed(seed)
    model = make_model(seed, width).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
    miner: hm.HardMiner | None = None
    pruner: hm.PruningSampler | hm.PrioritySampler | None = None
    il: torch.Tensor | None = None
    candidates = BATCH
    pressure = 1.0  # priority's pressure at the start, for cool=1
    rescale = True  # pruning: weight the kept low-loss samples up (rescale=0 turns it off)
    floor: float | None = None  # pruning:rho=1,floor=0: the observed reducible losses floored
    fused = False  # priority:top=K: train on the BATCH largest losses of a batch of BATCH / K, from one forward pass
    rest = float(options.pop("rest", 0.0))  # top=K,rest=A: the other candidates weighted A (0: left out)
    if rest and ("top" not in options or not 0.0 <= rest <= 1.0):
        raise ValueError(f"rest= is a weight in [0, 1] for the candidates top= leaves out, not {method!r} {options}.")
    if method == "balanced":
        counts = torch.bincount(y_train, minlength=NUM_CLASSES).double()
        sampler = WeightedRandomSampler((1.0 / counts)[y_train], num_samples=n, replacement=True, generator=g)
        loader: Any = batches(BATCH, sampler)
    elif method in ("hm-offline", "hm-online"):
        base = DataLoader(train_set, batch_size=BATCH, shuffle=True)
        kw: dict[str, Any] = {"rescore_every": None} if method == "hm-online" else {}
        kw["warmup_epochs"] = 0  # the published results mine from the first epoch (the library default is 1 since)
        kw.update({k: v for k, v in options.items() if k != "weight_by"})
        if "weight_by" in options:  # continuous weights from a score instead of easy/hard groups
            kw["weight_kwargs"] = {"by": options["weight_by"]}
        miner = hm.HardMiner(model, base, seed=seed, progress=False, indices=True, **kw)
        loader = miner
    elif method in ("selective-backprop", "rho-loss"):
        candidates = max(BATCH, round(BATCH / options.get("keep", keep)))
        loader = batches(candidates, generator=g, drop_last=True, with_indices=True)
        if method == "rho-loss":
            il = irreducible_losses(data, y_hold, train_set, seed, options.get("il_epochs", il_epochs))
    elif method in ("pruning", "pruning-filter"):
        if "top" in options:  # batches of BATCH / K from the sampler's epochs, trained on their BATCH largest
            fused = True
            candidates = max(BATCH, round(BATCH / options.pop("top")))
        rescale = bool(options.pop("rescale", 1))  # rescale=0: the kept low-loss samples keep weight 1
        if options.pop("rho", 0):  # rho=1: prune by the reducible loss (loss minus an irreducible-loss model's)
            il = irreducible_losses(data, y_hold, train_set, seed, options.pop("il_epochs", il_epochs))
            floor = options.pop("floor", None)  # floor=0: every reducible loss below 0 counts as 0
        kw = {"prune": 0.5, "epochs": epochs, "seed": seed}
        if method == "pruning-filter":
            kw.update(exclude=0.2, warmup_epochs=2)
        kw.update(options)
        if "importance" in kw:
            pruner = ImportancePruning(n, **kw)
        elif "learnt" in kw:
            pruner = LearntPruning(n, **kw)
        else:
            pruner = hm.PruningSampler(n, **kw)
    elif method == "priority":
        if "keep" in options or "top" in options:  # fresh in-batch selection from larger batches the sampler draws
            if "keep" in options and "top" in options:
                raise ValueError("priority takes keep= (a selection pass) or top= (no extra pass), not both.")
            fused = "top" in options
            candidates = max(BATCH, round(BATCH / options.pop("top" if fused else "keep")))
            epochs = math.ceil(total_steps / math.ceil(n / candidates))
        pruner = hm.PrioritySampler(n, **{"seed": seed, **options})
        pressure = pruner.pressure
    elif method == "priority-oracle":
        pruner = OracleExclusion(n, wrong=y_train != data["y_train"], **{"seed": seed, "pressure": 10.0, **options})
    else:
        loader = batches(batch, generator=g)
    if fused and elr_beta is not None:
        raise ValueError(f"{method}'s top= trains on the plain cross-entropy; it does not combine with elr=.")
    elr = None if elr_beta is None else hm.EarlyLearningLoss(n, NUM_CLASSES, beta=float(elr_beta)).to(dev)
    if elr is not None and pruner is None and method != "uniform":
        raise ValueError(f"The elr option is for uniform and priority, not {method!r}.")
    progress = EpochProgress() if isinstance(pruner, hm.PruningSampler) and schedule != "constant" else None
    if pruner is not None or elr is not None:  # batches carry their dataset indices, as the guides show
        if pruner is not None:  # the samplers fed by the training step's losses
            size = batch if candidates == BATCH else candidates
            loader = _epochs(batches(size, pruner, with_indices=True), pruner, epochs, progress)
        else:
            loader = batches(batch, generator=g, with_indices=True)
    if method == "ohem":
        loss_fn = lambda z, t: hm.ohem_loss(z, t)  # noqa: E731
    elif method == "focal":
        loss_fn = lambda z, t: hm.focal_loss(z, t, gamma=2.0)  # noqa: E731
    history = hm.LossHistory(1024) if options.get("method") == "percentile" else None
    pick = None if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(seed)  # percentile's, on the device

    curve: list[tuple[int, float, float]] = []
    curve_base: list[tuple[int, float, float]] = []  # on the default test set, when the test set is larger
    parts: dict[str, list[tuple[int, float, float]]] = {"curve_hard": [], "curve_easy": []}  # a difficulty mixture
    masks = {"curve_hard": data["hard_test"], "curve_easy": ~data["hard_test"]} if "hard_test" in data else {}
    masks = {key: where.to(dev) for key, where in masks.items()}
    sizes = {key: int(where.sum()) for key, where in masks.items()}

    def measure(step: int) -> None:
        right, now = correct(model, x_test, y_test), clock.now()
        curve.append((step, now, int(right.sum()) / len(right)))
        if len(right) > BASE_TEST_SIZE:
            curve_base.append((step, now, int(right[:BASE_TEST_SIZE].sum()) / BASE_TEST_SIZE))
        for key, where in masks.items():
            parts[key].append((step, now, int(right[where].sum()) / sizes[key]))

    clock.pause()
    measure(0)
    clock.resume()
    step = 0
    for batch in loader if pruner is not None else _forever(loader):
        if pruner is not None and candidates != BATCH and not fused:
            idx, x, y = batch
            pos, fresh = hm.select_batch(model, x, y, min(BATCH, len(y)), return_scores=True)
            pruner.observe(idx, fresh)  # every candidate's loss, fresh; the trained ones are observed again below
            idx, x, y = idx[pos], x[pos], y[pos]
        elif method in ("hm-offline", "hm-online") or pruner is not None or elr is not None:
            idx, x, y = batch
        elif candidates != BATCH or method in ("selective-backprop", "rho-loss"):
            idx, x, y = batch
            pos = hm.select_batch(
                model,
                x,
                y,
                BATCH,
                irreducible=None if il is None else il[idx],
                method=options.get("method", "top"),
                history=history,
                beta=options.get("beta", 1.0),
                generator=g if dev.type == "cpu" else pick,
            )
            x, y = x[pos], y[pos]
        else:
            x, y = batch
        if schedule != "constant":
            if progress is not None:  # a pruning run: the schedule's step at the epochs it has run
                virtual = min(epochs * epoch_steps - 1, int(progress.epochs_done() * epoch_steps))
                rate = scheduled_lr(schedule, lr, virtual, epochs * epoch_steps, cooldown)
            else:
                rate = scheduled_lr(schedule, lr, step, total_steps, cooldown)
            for group in opt.param_groups:
                group["lr"] = rate
            if cool and isinstance(pruner, hm.PrioritySampler):  # geometric: pressure ** (rate / lr), 1 at rate 0
                pruner.pressure = pressure ** (rate / lr)
        model.train()
        logits = model(x)
        if pruner is not None:
            losses = F.cross_entropy(logits, y, reduction="none")
            weights = pruner.loss_weights(idx) if isinstance(pruner, hm.PruningSampler) and rescale else None
            if elr is not None:
                loss = elr(idx, logits, y)
            elif fused:  # the gradient of the BATCH hardest, as if trained on them alone (this CNN has no BatchNorm)
                loss = fused_loss(losses, BATCH, rest=rest, weights=weights)
            else:
                loss = losses.mean() if weights is None else (losses * weights).mean()
            observed = losses.detach() if il is None else losses.detach() - il[idx]
            pruner.observe(idx, observed if floor is None else observed.clamp_min(floor))
        elif elr is not None:
            loss = elr(idx, logits, y)
        else:
            loss = loss_fn(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if method == "hm-online" and miner is not None:
            miner.observe(idx, logits.detach(), y)
        step += 1
        if step % eval_every == 0 or step == total_steps:
            clock.pause()
            measure(step)
            clock.resume()
        if step == total_steps:
            break
    clock.pause()
    if curve[-1][0] != step:  # a pruning run ends its epochs before the step budget
        measure(step)
    out: dict[str, Any] = {"curve": curve, "score_calls": 0 if miner is None else miner.score_calls}
    if curve_base:
        out["curve_base"] = curve_base
    if "hard_test" in data:
        out.update(parts)
    return out


# ---------------------------------------------------------------------------------------------------- summary


def _reach(curve: list[list[float]], target: float) -> tuple[float, float] | None:
    for step, cpu, acc in curve:
        if acc >= target - 1e-12:
            return step, cpu
    return None


def _at_budget(curve: list[list[float]], budget: float) -> float:
    best = curve[0][2]
    for _, cpu, acc in curve:
        if cpu <= budget * 1.0001:
            best = acc
    return best


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: final accuracy, paired difference to uniform, accuracy at uniform's CPU budget, steps/CPU ratios."""
    base = runs["uniform"]
    out: dict[str, dict[str, Any]] = {}
    for method, seeds in runs.items():
        finals, diffs, budget_acc, budget_diff, step_ratios, cpu_ratios, cpu_per_step = [], [], [], [], [], [], []
        budget_steps, budget_cpu = [], []
        reached = 0
        for run_, ref in zip(seeds, base, strict=True):
            curve, ref_curve = run_["curve"], ref["curve"]
            final = curve[-1][2]
            target = statistics.mean(p[2] for p in ref_curve[-2:])
            finals.append(final)
            diffs.append(final - ref_curve[-1][2])
            acc_b = _at_budget(curve, ref_curve[-1][1])
            budget_acc.append(acc_b)
            budget_diff.append(acc_b - ref_curve[-1][2])
            cpu_per_step.append(curve[-1][1] / max(1, curve[-1][0]))
            hit = _reach(curve, target)
            ref_hit = _reach(ref_curve, target)
            if hit is not None and ref_hit is not None:
                reached += 1
                step_ratios.append(hit[0] / ref_hit[0])
                cpu_ratios.append(hit[1] / ref_hit[1])
                budget_steps.append(hit[0] / ref_curve[-1][0])
                budget_cpu.append(hit[1] / ref_curve[-1][1])
        out[method] = {
            "final_mean": statistics.mean(finals),
            "final_sd": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "final_minus_uniform": statistics.mean(diffs),
            "at_uniform_cpu_mean": statistics.mean(budget_acc),
            "at_uniform_cpu_minus_uniform": statistics.mean(budget_diff),
            "reached": reached,
            "seeds": len(seeds),
            "steps_ratio_median": statistics.median(step_ratios) if step_ratios else None,
            "cpu_ratio_median": statistics.median(cpu_ratios) if cpu_ratios else None,
            "steps_of_budget_median": statistics.median(budget_steps) if budget_steps else None,
            "cpu_of_budget_median": statistics.median(budget_cpu) if budget_cpu else None,
            "cpu_ms_per_step": 1000 * statistics.mean(cpu_per_step),
        }
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "never" if value is None else format(value, spec)


def markdown(
    noise: float, summary: dict[str, dict[str, Any]], setup: str, base: dict[str, dict[str, Any]] | None = None
) -> str:
    """The table of one noise level; with ``base`` (the same runs on the default 2,160 test images), a second one."""
    text = f"Label noise {noise:.0%}: {setup}\n\n" + _table(summary)
    if base:
        text += (
            f"\nThe same runs, measured on the first {BASE_TEST_SIZE:,} test images alone (the default test set):\n\n"
            + _table(base)
        )
    return text


def _table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| method | final acc | − uniform | acc at uniform's CPU | − uniform | reached uniform's final "
        "| steps to it (× uniform) | CPU to it (× uniform) | steps to it (× uniform's budget) "
        "| CPU to it (× uniform's budget) | CPU ms / step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, row in summary.items():
        lines.append(
            f"| {method} | {row['final_mean']:.4f} ± {row['final_sd']:.4f} | {row['final_minus_uniform']:+.4f} "
            f"| {row['at_uniform_cpu_mean']:.4f} | {row['at_uniform_cpu_minus_uniform']:+.4f} "
            f"| {row['reached']}/{row['seeds']} | {_fmt(row['steps_ratio_median'], '.2f')} "
            f"| {_fmt(row['cpu_ratio_median'], '.2f')} | {_fmt(row.get('steps_of_budget_median'), '.2f')} "
            f"| {_fmt(row.get('cpu_of_budget_median'), '.2f')} | {row['cpu_ms_per_step']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=30_000)
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    parser.add_argument(
        "--test-variants",
        type=int,
        default=TEST_VARIANTS,
        help="variants of each of the 540 held-out originals in the test set (4: 2,160 images); above 4, each run "
        "is also measured on the default 2,160 alone",
    )
    parser.add_argument("--keep", type=float, default=0.25)
    parser.add_argument("--lr", type=float, default=LR, help="Adam's learning rate for every method")
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="constant",
        help="cosine: anneal to 0 over each run's budget; wsd: constant, then linear to 0 over its last --cooldown",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=COOLDOWN,
        help=f"the share of each run that --schedule wsd decays the learning rate over, in (0, 1] ({COOLDOWN})",
    )
    parser.add_argument("--il-epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=1, help="multiplies the CNN's channels (16 and 32 at 1)")
    parser.add_argument(
        "--hard-share",
        type=float,
        default=0.0,
        help=f"the share of every set's images transformed {HARD_STRENGTH:g} times as strongly (a difficulty mixture)",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument(
        "--device",
        default="cpu",
        help="where to train (cuda: data, model and steps on the GPU, batches by indexing, synchronised wall-clock "
        f"time in the CPU columns; the methods {ACCELERATED})",
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1,000 samples, 1 epoch, no noise")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stem", default=None)
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="combine result JSONs of runs split by noise level (e.g. run in parallel) into one table; runs nothing",
    )
    parser.add_argument(
        "--concat-seeds",
        nargs="+",
        type=Path,
        default=None,
        help="combine result JSONs of the same methods run on different seeds into one table of all the seeds; "
        "runs nothing",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.stem or "bench_selection")
    if args.concat_seeds:
        return concat_seeds(args.concat_seeds, args.out, args.stem or "bench_selection_seeds")
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.train_size, args.epochs, args.eval_every, args.noise, args.il_epochs = 2, 1000, 1, 8, [0.0], 1
    methods = list(dict.fromkeys(["uniform", *args.methods]))
    unknown = [m for m in methods if _base(m) not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {METHODS}")
    if args.test_variants < TEST_VARIANTS:
        parser.error(f"--test-variants must be at least {TEST_VARIANTS}, got {args.test_variants}")
    if not 0.0 < args.cooldown <= 1.0:
        parser.error(f"--cooldown must be in (0, 1], got {args.cooldown}")
    if args.cooldown != COOLDOWN and args.schedule != "wsd":
        parser.error(f"--cooldown is for --schedule wsd, got --schedule {args.schedule}")
    if args.width < 1:
        parser.error(f"--width must be at least 1, got {args.width}")
    if not 0.0 <= args.hard_share <= 1.0:
        parser.error(f"--hard-share must be in [0, 1], got {args.hard_share}")
    try:
        device = torch.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device must be a torch device such as cpu or cuda, got {args.device!r} ({error})")
    if device.type != "cpu":
        if not torch.accelerator.is_available() or torch.accelerator.current_accelerator().type != device.type:
            parser.error(f"--device {args.device}: this machine has no such accelerator")
        elsewhere = [m for m in methods if _base(m) not in ACCELERATED or "rho=1" in m]
        if elsewhere:
            parser.error(f"--device {args.device} runs the methods {ACCELERATED} (without rho=1), not {elsewhere}")
    data = make_images(args.train_size, 3_000 if not args.quick else 300, args.test_variants, args.hard_share)
    warm = {"eval_every": 10**9, "keep": args.keep, "il_epochs": 1, "device": device}
    run("uniform", data, noise=0.0, seed=0, epochs=1, **warm)  # warm-up
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    stem = args.stem or ("bench_selection_quick" if args.quick else "bench_selection")
    results: dict[str, Any] = {"setup": _setup(args, seeds), "noise": {}}
    for noise in args.noise:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for done, seed in enumerate(seeds, 1):  # seeds outside: every finished seed is saved, with all methods
            for method in methods:
                spec, _, budget = method.partition("@")
                name, _, extra = spec.partition(":")
                r = run(
                    name,
                    data,
                    noise=noise,
                    seed=seed,
                    epochs=args.epochs,
                    eval_every=args.eval_every,
                    keep=args.keep,
                    il_epochs=args.il_epochs,
                    options=_parse_options(extra),
                    budget=float(budget or 1.0),
                    schedule=args.schedule,
                    lr=args.lr,
                    cooldown=args.cooldown,
                    width=args.width,
                    device=device,
                )
                runs[method].append(r)
                last = r["curve"][-1]
                print(f"noise {noise:.1f} {method:>24} seed {seed}: acc {last[2]:.4f}, cpu {last[1]:.1f} s", flush=True)
            setup = _setup(args, seeds[:done])
            summary = summarise(runs)
            curves = {m: [r["curve"] for r in rs] for m, rs in runs.items()}
            row: dict[str, Any] = {"summary": summary, "runs": curves, "setup": setup}
            if args.test_variants > TEST_VARIANTS:  # the same runs on the default test set
                row["runs_base"] = {m: [r["curve_base"] for r in rs] for m, rs in runs.items()}
                row["summary_base"] = _summary_of(row["runs_base"])
            if "hard_test" in data:  # the same runs on the hard test images and on the others
                for part in ("hard", "easy"):
                    row[f"runs_{part}"] = {m: [r[f"curve_{part}"] for r in rs] for m, rs in runs.items()}
            results["noise"][str(noise)] = row
            results["setup"] = setup
            blocks = [_block(k, row) for k, row in results["noise"].items()]
            save_results(args.out, stem, results["noise"], "\n".join(blocks), setup=setup, device=device)
        print(blocks[-1], flush=True)
    return results


def _summary_of(curves: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    return summarise({m: [{"curve": c} for c in cs] for m, cs in curves.items()})


def _block(noise: str, row: dict[str, Any]) -> str:
    """A saved row's markdown: its table, and the default test set's table of the same runs where it has one."""
    table = markdown(float(noise), row["summary"], row["setup"], row.get("summary_base"))
    return table + parts_markdown(row) if "runs_hard" in row else table


def parts_markdown(row: dict[str, Any]) -> str:
    """The final accuracy of every method on a difficulty mixture's hard test images and on the others.

    Each with its difference to uniform paired by seed, in points, its standard error, and the seeds at or above.
    """
    lines = [
        "",
        "",
        "The same runs, final accuracy on the strongly transformed test images and on the others "
        "(− uniform in points, paired by seed; standard error; seeds at or above):",
        "",
        "| method | hard | − uniform | others | − uniform |",
        "|---|---|---|---|---|",
    ]
    finals = {part: {m: [c[-1][2] for c in cs] for m, cs in row[f"runs_{part}"].items()} for part in ("hard", "easy")}
    for method in row["runs_hard"]:
        cells = [method]
        for part in ("hard", "easy"):
            mine, base = finals[part][method], finals[part]["uniform"][: len(finals[part][method])]
            diffs = [100 * (a - b) for a, b in zip(mine, base, strict=True)]
            se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
            at_or_above = sum(d >= 0 for d in diffs)
            cells += [
                f"{statistics.fmean(mine):.4f}",
                f"{statistics.fmean(diffs):+.2f} ({se:.2f}; {at_or_above} of {len(diffs)})",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _setup(args: argparse.Namespace, seeds: list[int]) -> str:
    variants = getattr(args, "test_variants", TEST_VARIANTS)
    test = f"on {variants * TEST_ORIGINALS:,} test images ({variants} variants of each original), "
    width = getattr(args, "width", 1)
    model = "small CNN" if width == 1 else f"CNN {width}x as wide (channels {16 * width} and {32 * width})"
    hard = getattr(args, "hard_share", 0.0)
    images = "12x12 affine digits" + (f", {hard:.0%} of every set {HARD_STRENGTH:g}x as strongly" if hard else "")
    device = str(getattr(args, "device", "cpu"))
    where = "" if device == "cpu" else f"on {device} (the CPU columns: its synchronised wall-clock time), "
    return (
        f"{where}{args.train_size:,} training samples ({images}), {model}, Adam {args.lr:g}"
        f"{schedule_note(args.schedule, getattr(args, 'cooldown', COOLDOWN))}, batch 64, "
        f"{args.epochs} epochs = {args.epochs * math.ceil(args.train_size / BATCH):,} gradient steps, "
        f"{f'evaluated every {args.eval_every} steps, ' if args.eval_every != EVAL_EVERY else ''}"
        f"{test if variants != TEST_VARIANTS else ''}"
        f"{len(seeds)} seeds {seeds[0]}..{seeds[-1]}, selection keep {args.keep} "
        f"(candidates {round(BATCH / args.keep)}), irreducible-loss model {args.il_epochs} epochs on 3,000 held-out."
    )


def _machine_of(paths: list[Path], saved: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The machine the files' runs were measured on, not the one combining them; ``None`` if no file names one.

    Raises:
        ValueError: two files name different machines (one table would mix their CPU times).
    """
    named = [(str(p), s["machine"]) for p, s in zip(paths, saved, strict=True) if "machine" in s]
    others = [p for p, m in named[1:] if m != named[0][1]]
    if others:
        raise ValueError(
            f"Expected result files measured on one machine, but {others} name another than {named[0][0]}: "
            f"{named[0][1]}."
        )
    return named[0][1] if named else None


def merge(paths: list[Path], out: Path, stem: str) -> dict[str, Any]:
    """One table from several result files of this script (one per noise level), in the order given.

    The same noise level in two files: their methods side by side, in the order of :data:`METHODS`; a method in
    both (``uniform``, every file's reference) keeps the first file's results, so name the file with the most seeds
    first. A file's summaries are computed from its curves against its own uniform runs, unless it already has them
    (a merged file keeps each method's summary against the uniform runs of its own batch). Noise levels come in
    ascending order; each keeps the setup line of the first file that has it (a partial run may have finished fewer
    seeds; the ``reached`` column says how many each method ran). The result names the machine the files name (the
    runs' own, e.g. their one torch thread), not the process merging them.

    Raises:
        ValueError: two files name different machines.
    """
    rows: dict[str, Any] = {}
    setups = []
    files = [json.loads(Path(path).read_text()) for path in paths]
    info = _machine_of(paths, files)
    for saved in files:
        for noise, row in saved["rows"].items():
            row.setdefault("setup", saved["setup"])
            if "uniform" in row["runs"] and not _summarised(row):  # from the curves, against the file's own uniform
                row["summary"] = _summary_of(row["runs"])
            if "uniform" in row.get("runs_base", {}) and "summary_base" not in row:
                row["summary_base"] = _summary_of(row["runs_base"])
            if noise not in rows:
                rows[noise] = row
                continue
            for key in ("runs_base", "runs_hard", "runs_easy"):  # other yardsticks only where every file has them
                if key not in row:
                    rows[noise].pop(key, None)
                    rows[noise].pop(key.replace("runs", "summary"), None)
            for part in _PARTS:
                if part in rows[noise]:
                    rows[noise][part] = {**row[part], **rows[noise][part]}
        setups.append(saved["setup"])
    rows = {k: rows[k] for k in sorted(rows, key=float)}
    for row in rows.values():
        rank = {m: (METHODS.index(_base(m)), i) for i, m in enumerate(row["summary"])}
        for part in _PARTS:
            if part in row:
                row[part] = {m: row[part][m] for m in sorted(row[part], key=rank.__getitem__)}
    blocks = [_block(noise, row) for noise, row in rows.items()]
    save_results(out, stem, rows, "\n".join(blocks), setup=setups[0], merged=True, machine_info=info)
    print("\n".join(blocks))
    return {"setup": setups[0], "noise": rows}


#: A saved row's parts keyed by method: on the test set, (``--test-variants`` above 4) on the default one, and (a
#: difficulty mixture) on its hard test images and on the others.
_PARTS = ("summary", "runs", "summary_base", "runs_base", "runs_hard", "runs_easy")
_SUMMARY_KEYS = frozenset({"final_mean", "steps_ratio_median", "cpu_ratio_median", "cpu_of_budget_median"})
_SEEDS = re.compile(r"\d+ seeds [\d.]+")  # "5 seeds 0..4" in a setup line


def _seeds(row: dict[str, Any]) -> str:
    """The seeds a file's row ran, from its setup line: ``"5 seeds 0..4"``."""
    found = _SEEDS.search(row.get("setup", ""))
    return found.group(0) if found else f"{len(row['runs']['uniform'])} seeds"


def concat_seeds(paths: list[Path], out: Path, stem: str) -> dict[str, Any]:
    """One table from result files of the same methods on different seeds (``--first-seed``): the seeds together.

    Per noise level, the methods that every file ran (in the first file's order) get the runs of every file, in the
    order given, and their summaries are recomputed over all of them (each seed against its own uniform run). The
    setup line names every file's seeds.

    Pass the files of single runs (each seed's CPU times are compared with the uniform run of its own batch), not
    merged ones.

    Raises:
        ValueError: a file came from ``--merge``, the files share no noise level, a noise level has no ``uniform``
            in every file, or the files name different machines.
    """
    saved = [json.loads(Path(path).read_text()) for path in paths]
    merged = [str(p) for p, s in zip(paths, saved, strict=True) if s.get("merged")]
    if merged:
        raise ValueError(
            f"Expected the result files of single runs of this script, but {merged} came from --merge: its methods "
            "may come from batches with different uniform runs, and pooled seeds are compared with one."
        )
    info = _machine_of(paths, saved)
    noises = [n for n in saved[0]["rows"] if all(n in s["rows"] for s in saved)]
    if not noises:
        raise ValueError(f"Expected result files with a noise level in common, but got {[str(p) for p in paths]}.")
    rows: dict[str, Any] = {}
    for noise in noises:
        parts = [s["rows"][noise] for s in saved]
        methods = [m for m in parts[0]["runs"] if all(m in p["runs"] for p in parts)]
        if "uniform" not in methods:
            raise ValueError(f"Expected `uniform` in every file at noise {noise}, the reference of the summaries.")
        runs = {m: [c for p in parts for c in p["runs"][m]] for m in methods}
        seeds = " + ".join(_seeds(p) for p in parts)
        setup = _SEEDS.sub(f"{len(runs['uniform'])} seeds ({seeds})", parts[0].get("setup", ""), count=1)
        rows[noise] = {"summary": _summary_of(runs), "runs": runs, "setup": setup}
        for key in ("runs_base", "runs_hard", "runs_easy"):  # the default test set, a mixture's parts
            if all(key in p for p in parts):  # every file measured it
                rows[noise][key] = {m: [c for p in parts for c in p[key][m]] for m in methods}
        if "runs_base" in rows[noise]:
            rows[noise]["summary_base"] = _summary_of(rows[noise]["runs_base"])
    blocks = [_block(noise, row) for noise, row in rows.items()]
    save_results(out, stem, rows, "\n".join(blocks), setup=rows[noises[0]]["setup"], machine_info=info)
    print("\n".join(blocks))
    return {"setup": rows[noises[0]]["setup"], "noise": rows}


def _summarised(row: dict[str, Any]) -> bool:
    """Whether a saved row has a current summary of every method it ran (then :func:`merge` keeps it).

    A merged file's methods may come from batches of runs with different uniform runs (the CPU times differ from one
    batch to the next), so its summaries are kept as they were computed; only a missing or outdated one is rebuilt.
    """
    summary = row.get("summary") or {}
    return all(m in summary and _SUMMARY_KEYS <= set(summary[m]) for m in row["runs"])


def _base(method: str) -> str:
    """The method's name without options or budget: ``"priority:pressure=10@0.5"`` -> ``"priority"``."""
    return method.partition("@")[0].partition(":")[0]


def _parse_options(text: str) -> dict[str, Any]:
    """``"keep=0.5,method=percentile"`` -> ``{"keep": 0.5, "method": "percentile"}`` (numbers parsed)."""
    options: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        for cast in (int, float):
            try:
                options[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            options[key] = None if value == "None" else value
    return options


if __name__ == "__main__":
    main()
