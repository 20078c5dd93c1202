"""Write the notebooks of this folder from the Python source below, outputs stripped.

Edit the cells here, then run ``python notebooks/_build.py``; ``--check`` exits with 1 when a committed notebook
differs from what this script writes (the test suite runs the same check). The notebooks are executed top to bottom
by ``tests/test_notebooks.py``.

Every notebook writes its files to ``$HARDMINE_NOTEBOOK_DIR`` when it is set, else to a fresh temporary folder, never
next to itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """\
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hardmine as hm
import hardmine.analysis.plot as hmplot
from hardmine.app.demo import digits_cnn, load_digits_tensors

# Files go to $HARDMINE_NOTEBOOK_DIR, else to a fresh temporary folder: never next to the notebook.
out = Path(os.environ.get("HARDMINE_NOTEBOOK_DIR") or tempfile.mkdtemp(prefix="hardmine-{name}-"))
out.mkdir(parents=True, exist_ok=True)
print("output folder:", out)"""

RARE = '''\
def rare_positive(ds: TensorDataset, digit: int, fraction: float, seed: int) -> TensorDataset:
    """A binary task from digits: label 1 (positive) for `digit`, 0 (negative) for the rest.

    All negatives are kept and just enough positives that they make up `fraction` of the result.
    """
    x, y = ds.tensors
    g = torch.Generator().manual_seed(seed)
    pos = torch.nonzero(y == digit).flatten()
    neg = torch.nonzero(y != digit).flatten()
    k = max(1, round(fraction * len(neg) / (1 - fraction)))
    keep = torch.cat([neg, pos[torch.randperm(len(pos), generator=g)[:k]]]).sort().values
    return TensorDataset(x[keep], (y[keep] == digit).long())'''


TRAIN_EPOCH = '''\
def train_epoch(model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer) -> None:
    """One pass over `loader` of plain cross-entropy training (the caller sets train or eval mode)."""
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()'''


def setup(name: str, *, unused: tuple[str, ...] = (), replace: dict[str, str] | None = None) -> str:
    """The first code cell of notebook ``name``: import lines it does not use dropped, others replaced."""
    lines = [(replace or {}).get(line, line) for line in SETUP.format(name=name).splitlines()]
    return "\n".join(line for line in lines if line not in unused)


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text.strip("\n"))


QUICKSTART = [
    md("""
# Quickstart: find the hard examples in a training set

You have a model and a DataLoader. In about a minute on a CPU, this notebook

1. trains a small CNN on scikit-learn's bundled 8x8 digits (nothing is downloaded),
2. **scores** every training sample in one batched inference pass with `hm.score`,
3. **splits** the samples into positive/negative and easy/hard with `hm.split`, and summarises them,
4. shows the **hard examples** as images,
5. **exports** them to CSV for people and other tools, and
6. picks what to **label next** when there are no labels yet (active learning).
"""),
    code(setup("01", unused=("import numpy as np",))),
    code(TRAIN_EPOCH),
    md("""
## 1. Data, ground truth and a model

The **ground truth** is the reference label of each sample, here the digit a person wrote. The DataLoader yields it
as the target tensor of shape `(B,)` next to the images `(B, 1, 8, 8)`, and training minimises the gap between the
model's predictions and it.

Real datasets contain mistakes in their ground truth, so we flip 3% of the training labels on purpose and remember
which ones: we will see whether hardmine finds them among the hard samples.
"""),
    code("""
torch.manual_seed(0)
g = torch.Generator().manual_seed(0)
train, test = load_digits_tensors(seed=0)
x, y_clean = train.tensors
flipped = torch.zeros(len(y_clean), dtype=torch.bool)
flipped[torch.randperm(len(y_clean), generator=g)[: round(0.03 * len(y_clean))]] = True
y = torch.where(flipped, (y_clean + torch.randint(1, 10, y_clean.shape, generator=g)) % 10, y_clean)
train_set = TensorDataset(x, y)
loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=g)
print(f"{len(train_set)} training images {tuple(x.shape[1:])}, {int(flipped.sum())} labels flipped; "
      f"{len(test)} test images")
"""),
    code("""
model = digits_cnn()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
t0 = time.perf_counter()
for _ in range(15):
    model.train()
    train_epoch(model, loader, opt)
print(f"trained 15 epochs in {time.perf_counter() - t0:.1f} s")
"""),
    md("""
## 2. Score every sample

`hm.score(model, loader)` runs the model once over `loader.dataset` in evaluation mode and returns a pandas DataFrame
with one row per sample, in dataset order, whatever the loader's shuffling. The model is left exactly as it was.

- `confidence`: the probability of the *predicted* class, the classic "confidence";
- `label_prob`: the probability of the *ground-truth* label; low when the model disagrees with the label;
- `margin`: `label_prob` minus the largest other probability (negative = misclassified);
- `entropy` and `loss`: the uncertainty of the prediction and the cross-entropy against the label.
"""),
    code("""
scores = hm.score(model, loader)  # a progress bar while it runs (tqdm; a widget in Jupyter)
scores.head()
"""),
    md("""
## 3. Positive/negative and easy/hard

- **Positive and negative** depend only on the ground truth: here digit 9 is the class of interest, so the samples
  labelled 9 are positive and all others negative (one-vs-rest).
- **Easy and hard** depend on the model: a sample is hard when the model gets it wrong or barely right. We call it
  hard when the probability of its ground-truth label is below 0.7, as the classic tutorials do with confidence.

Together they give four groups: `hard_positive`, `easy_positive`, `hard_negative` and `easy_negative`.
"""),
    code("""
table = hm.split(scores, threshold=0.7, positive=9)
hm.summary(table)
"""),
    md("""
Without `positive`, a multi-class table is split easy/hard only (no positive class is invented), and `hm.summary`
reports every class: support, hard count, precision, recall and F1, accuracy, balanced accuracy, macro and weighted
F1, and the 10 x 10 confusion (rows: ground truth). The values equal scikit-learn's `classification_report`.
"""),
    code("""
hm.summary(hm.split(scores, threshold=0.7)).per_class.round(3)
"""),
    md("""
The score distribution of each group (log scale, so the few hard samples stay visible next to the easy majority),
with the threshold drawn:
"""),
    code("""
hmplot.label_prob_histogram(table)
"""),
    md("""
## 4. The hard examples

The gallery shows the hardest samples first (lowest probability of their label), with the ground-truth label, the
prediction and the score in each title (red when the prediction disagrees with the label). Many of them are the
flipped labels: the image shows one digit, the label says another, and the model believes the image.
"""),
    code("""
hmplot.gallery(table, train_set, group="hard", n=16)
"""),
    code("""
table["flipped"] = flipped.numpy()
pd.crosstab(table["difficulty"], table["flipped"], margins=True)
"""),
    md("""
The confusion matrix of the positive class (ground truth in rows, prediction in columns), on the training labels:
"""),
    code("""
hmplot.confusion(table)
"""),
    md("""
## 5. Export the hard samples

`hm.to_csv` writes atomically (a reader sees the old file or the complete new one) and `hm.read_csv` restores the
dtypes, categorical columns included.
"""),
    code("""
path = hm.to_csv(table, out / "hard.csv", only="hard")
hard = hm.read_csv(path)
print(f"{len(hard)} hard samples written to {path}")
hard[["index", "label", "pred", "label_prob", "group", "flipped"]].head(8)
"""),
    md("""
## 6. No labels yet: what to label next (active learning)

Unlabeled data has no ground truth, so "hard" can only mean *uncertain*: a low top-1 probability (`confidence`), a
small gap between the two most likely classes (`margin`) or a high `entropy`. `hm.score` scores a loader of inputs
only (or any loader with `targets=False`) and returns `pred`, `confidence`, `margin` and `entropy`; `hm.split(...,
by="entropy", hard_fraction=q)` picks the most uncertain `q`.

The loop: label 5% of the training images at random and train; score the unlabeled rest; label the most uncertain
5% of the training set more and retrain. Against it: label a random 5% more instead. Test accuracy, averaged over
three seeds:
"""),
    code('''
def fit(idx: torch.Tensor, seed: int) -> nn.Module:
    """A fresh CNN trained on the training images `idx` with their true labels."""
    torch.manual_seed(seed)
    net = digits_cnn()
    optim = torch.optim.Adam(net.parameters(), lr=3e-3)
    data = DataLoader(TensorDataset(x[idx], y_clean[idx]), batch_size=32, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))
    for _ in range(40):
        net.train()
        train_epoch(net, data, optim)
    return net


def test_accuracy(net: nn.Module) -> float:
    t = hm.score(net, DataLoader(test, batch_size=256), progress=False)
    return float((t["pred"] == t["label"]).mean())


k = round(0.05 * len(x))
results = []
for seed in range(3):
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    labelled, pool = perm[:k], perm[k:]
    first = fit(labelled, seed)
    pool_scores = hm.score(first, DataLoader(TensorDataset(x[pool]), batch_size=256), progress=False)
    picked = hm.split(pool_scores, by="entropy", hard_fraction=k / len(pool))
    uncertain = pool[torch.from_numpy(picked.loc[picked["difficulty"] == "hard", "index"].to_numpy(copy=True))]
    at_random = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(100 + seed))[:k]]
    results.append({
        "seed": seed,
        "5% labelled": test_accuracy(first),
        "+5% most uncertain": test_accuracy(fit(torch.cat([labelled, uncertain]), seed)),
        "+5% at random": test_accuracy(fit(torch.cat([labelled, at_random]), seed)),
    })
active = pd.DataFrame(results).set_index("seed")
active.loc["mean"] = active.mean()
active.round(3)
'''),
    md("""
On our run (CPU, torch 2.14) the mean test accuracy went from 0.887 with the first 5% to 0.938 with the most
uncertain 5% added, against 0.930 with a random 5% added: the uncertain samples taught the model more on average,
but on one seed of three the random pick did as well. With so few samples the gap is small and varies; measure it
on your data before relying on it. The picked rows go to whoever labels them with `hm.to_csv`, most uncertain first:
"""),
    code("""
to_label = picked[picked["difficulty"] == "hard"].sort_values("entropy", ascending=False)
path = hm.to_csv(to_label, out / "to_label.csv")
hm.read_csv(path)[["index", "pred", "confidence", "margin", "entropy"]].head()
"""),
    md("""
Next: `02_precision_recall.ipynb` (precision, recall, F1 and choosing a threshold),
`03_hard_example_training.ipynb` (training on the hard examples with `HardMiner`) and
`04_images_on_disk.ipynb` (an image folder, a torchvision model and fine-tuning on the hard samples).
"""),
]


PRECISION_RECALL = [
    md("""
# Precision, recall and choosing a threshold on a rare-positive task

When the positive class is rare, accuracy says little: if 5% of the samples are positive, a model that always says
"negative" is 95% accurate and useless. This notebook builds such a task from the bundled digits ("is it a 3?", with
3s cut down to 5% of the data), and measures it the way rare-positive tasks are measured:

- **precision** = TP / (TP + FP): of the samples called positive, how many are;
- **recall** = TP / (TP + FN): of the real positives, how many were found;
- **F1** = 2 P R / (P + R), their harmonic mean.

The model outputs a probability of the positive class; the **decision threshold** turns it into a call. Raising the
threshold raises precision and lowers recall; lowering it does the opposite.
"""),
    code(setup("02", unused=("import time", "import numpy as np"))),
    code(TRAIN_EPOCH),
    md("""
## A rare-positive task

Positive and negative come from the ground truth only: label 1 for the digit 3, label 0 for every other digit. The
held-out digits are split in two: a **validation** set to choose the threshold and a **test** set to measure the
choice, so that the threshold is not tuned on the numbers we report.
"""),
    code(RARE),
    code("""
train, held_out = load_digits_tensors(seed=0, test_fraction=0.5)
x_h, y_h = held_out.tensors
half = torch.randperm(len(y_h), generator=torch.Generator().manual_seed(1))
val = TensorDataset(x_h[half[::2]], y_h[half[::2]])
test = TensorDataset(x_h[half[1::2]], y_h[half[1::2]])
train_b, val_b, test_b = (rare_positive(ds, 3, 0.05, seed) for seed, ds in enumerate((train, val, test)))
pd.DataFrame({name: {"samples": len(ds), "positives": int(ds.tensors[1].sum())}
              for name, ds in (("train", train_b), ("validation", val_b), ("test", test_b))}).T
"""),
    code("""
torch.manual_seed(0)
model = digits_cnn(num_classes=2)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loader = DataLoader(train_b, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
for _ in range(12):
    model.train()
    train_epoch(model, loader, opt)
val_scores = hm.score(model, DataLoader(val_b, batch_size=256))  # with a progress bar
test_scores = hm.score(model, DataLoader(test_b, batch_size=256), progress=False)
"""),
    md("""
## Accuracy is not enough

At the default decision (the arg-max class, which for two classes is a threshold of 0.5 on the positive
probability), compare the model with the useless "always negative" rule:
"""),
    code("""
always_negative = val_scores.assign(pred=0)
rows = {"model": hm.precision_recall_f1(val_scores), "always negative": hm.precision_recall_f1(always_negative)}
pd.DataFrame.from_dict(rows, orient="index")[["accuracy", "precision", "recall", "f1", "tp", "fp", "fn", "tn"]].round(3)
"""),
    md("""
Both look accurate; precision, recall and F1 tell them apart. The model is right whenever it says "positive"
(high precision) but misses a good part of the positives (lower recall): with so few positives in training, its
probability of the positive class rarely climbs above 0.5. The confusion matrix holds the counts behind these numbers:
TP (positive, called positive), FN (positive, missed), FP (negative, called positive) and TN.
"""),
    code("""
hmplot.confusion(val_scores)
"""),
    md("""
## The threshold trade-off

`hm.threshold_sweep` computes precision, recall and F1 at every threshold from 0.00 to 1.00 on the probability of
the positive class (recovered from `label_prob` for a binary task) and marks the threshold of best F1.
"""),
    code("""
sweep = hm.threshold_sweep(val_scores)
best = sweep.attrs["best_threshold"]
sweep[sweep["threshold"].isin([0.1, 0.3, 0.5, 0.7, 0.9]) | sweep["best"]].round(3)
"""),
    code("""
hmplot.pr_curve(val_scores)
"""),
    md("""
The same sweep as the classic precision-recall curve (precision against recall), with the best-F1 point:
"""),
    code("""
hmplot.pr_curve(sweep, kind="pr")
"""),
    md("""
## Check the chosen threshold on the test set

The threshold was chosen on the validation set; the test set tells us whether the choice holds. A sample is called
positive when its positive-class probability (`hm.positive_prob`) is at least the threshold.
"""),
    code('''
def at_threshold(scores: pd.DataFrame, t: float) -> pd.DataFrame:
    """The score table with its predictions made at decision threshold `t` on the positive-class probability."""
    return scores.assign(pred=(hm.positive_prob(scores) >= t).astype("int64"))


rows = {f"{t:.2f}" + (" (best F1 on validation)" if t == best else ""):
        hm.precision_recall_f1(at_threshold(test_scores, t)) for t in sorted({0.3, 0.5, 0.7, best})}
pd.DataFrame.from_dict(rows, orient="index")[["precision", "recall", "f1", "tp", "fp", "fn"]].round(3).rename_axis(
    "threshold")
'''),
    md("""
## Which samples are hard?

Easy and hard are a different question from positive and negative: they describe how the model does on each sample.
With a rare positive, the hard samples are often the positives, which the model sees too rarely to learn well;
`03_hard_example_training.ipynb` trains on them more often.
"""),
    code("""
val_table = hm.split(val_scores, threshold=0.7)
hm.summary(val_table)
"""),
    code("""
hmplot.label_prob_histogram(val_table, bins=20)
"""),
]


HARD_TRAINING = [
    md("""
# Training on the hard examples: `HardMiner` against uniform sampling

A rare positive class (the digit 8, cut down to 3% of the training set) is easy to under-learn: each epoch shows the
model only a few dozen 8s among a thousand other digits. Hard-example mining resamples the training set so that the
samples the model gets wrong or barely right, which here are mostly the positives, are seen more often.

`HardMiner` wraps the model and its DataLoader. At the start of every epoch it

1. **scores** every training sample (`hm.score`, one batched inference pass, the model left as it was),
2. **splits** them into easy and hard (`hm.split`, here: probability of the label below 0.7),
3. turns that into per-sample **weights**: every class gets the same share of the draws (`balance="label"`, the
   default, as a class-balanced sampler would do) and, within a class, a hard sample is drawn 4 times as often as an
   easy one (no sample below a floor), and
4. **draws** the epoch's batches with `HardSampler` in proportion to the weights.

We compare it with plain uniform shuffling on the same model, data and budget, and track the **F1 of the positive
class** on a held-out test set after every epoch, for two seeds.
"""),
    code(setup("03", unused=("import numpy as np",))),
    code(RARE),
    code("""
from hardmine.analysis.dynamics import Dynamics, dynamics_regions
from hardmine.feedback.miner import HardMiner

train, test = load_digits_tensors(seed=0, test_fraction=0.3)
train_b = rare_positive(train, 8, 0.03, seed=0)
test_b = rare_positive(test, 8, 0.05, seed=1)
test_loader = DataLoader(test_b, batch_size=512)
print(f"train: {len(train_b)} samples, {int(train_b.tensors[1].sum())} positive; "
      f"test: {len(test_b)} samples, {int(test_b.tensors[1].sum())} positive")
"""),
    md("""
## The two training loops

Both loops are the same plain PyTorch loop; only the source of the batches differs. `hm.with_indices` and
`HardMiner(indices=True)` put each sample's dataset index in front of its batch, so that `Dynamics` can record how
every sample's probability moves over the epochs (used for the data map at the end).
"""),
    code("""
EPOCHS = 12


def train_run(method: str, seed: int) -> tuple[list[float], HardMiner | None, Dynamics]:
    torch.manual_seed(seed)
    model = digits_cnn(num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_b, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    if method == "uniform":
        miner, batches = None, hm.with_indices(loader)
    else:
        miner = HardMiner(model, loader, threshold=0.7, positive=1, hard_weight=4.0, warmup_epochs=1,
                          indices=True, seed=seed, progress=seed == 0)  # a bar per scoring pass
        batches = miner
    dyn = Dynamics(num_samples=len(train_b))
    f1 = []
    for _ in range(EPOCHS):
        model.train()
        for idx, xb, yb in batches:
            logits = model(xb)
            opt.zero_grad()
            nn.functional.cross_entropy(logits, yb).backward()
            opt.step()
            dyn.update(idx, logits, yb)
        dyn.end_epoch()
        test_scores = hm.score(model, test_loader, progress=False)
        f1.append(hm.precision_recall_f1(test_scores, positive=1)["f1"])
    return f1, miner, dyn


t0 = time.perf_counter()
curves, miners, dynamics = {}, {}, {}
for seed in (0, 1):
    for method in ("uniform", "HardMiner"):
        curves[(method, seed)], miners[(method, seed)], dynamics[(method, seed)] = train_run(method, seed)
print(f"4 runs of {EPOCHS} epochs in {time.perf_counter() - t0:.1f} s")
"""),
    md("""
## F1 of the positive class, epoch by epoch
"""),
    code("""
import matplotlib.pyplot as plt

f1 = pd.DataFrame(curves, index=pd.RangeIndex(1, EPOCHS + 1, name="epoch"))
fig, ax = plt.subplots(figsize=(6.4, 3.8))
colors = {"uniform": "#1f77b4", "HardMiner": "#d62728"}
for (method, seed), values in f1.items():
    ax.plot(f1.index, values, color=colors[method], linestyle="-" if seed == 0 else "--",
            label=f"{method}, seed {seed}")
ax.set_xlabel("epoch")
ax.set_ylabel("F1 of the positive class (test)")
ax.set_ylim(-0.02, 1.02)
ax.legend(fontsize="small")
ax.set_title("rare positive (3% of training): uniform vs hard-example mining");
"""),
    code("""
summary = pd.DataFrame({
    "F1, mean of the last 3 epochs": f1.tail(3).mean(),
    "first epoch with F1 > 0.5": f1.gt(0.5).idxmax().where(f1.gt(0.5).any()),
}).rename_axis(["method", "seed"])
summary.round(3)
"""),
    md("""
With only a few dozen positives in training and a couple of dozen in the test set, these curves are noisy and
depend on the seed: read them as an illustration, not a benchmark. Under uniform sampling a run can stay at F1 = 0 for
many epochs (the model calls nothing positive): on our run seed 0 never left it in 12 epochs. Drawing the hard
samples more often shortened that wait here (F1 passed 0.5 at epoch 4 with both seeds, against epoch 7 or never) and
ended with the higher F1. Try more seeds, a per-class threshold or `apply="sample+correct"` before drawing
conclusions for your own data.

What `HardMiner` changes is visible in its history: one row per scoring pass, with the number of hard samples and how
often each hard and each easy sample was drawn until the next scoring. In the first mining epoch the hard samples are
exactly the positives (the model calls nothing positive yet), drawn about 16 times each against about half a time for
an easy negative. For the next two epochs the model still calls nothing positive (its accuracy, 0.97, is the share
of negatives), but it is no longer sure of the negatives either: almost every sample has a label probability under
the threshold 0.7, so almost every sample is hard and the draws are even. Then it learns the positives (the hard
positives fall from 35 to none by epoch 7), the hard set shrinks to the few samples it still gets wrong, and by the
last epoch nothing is hard and the draw is uniform. `momentum=` smooths such swings across re-scorings.
"""),
    code("""
miners[("HardMiner", 0)].history[["epoch", "hard", "hard_positive", "hard_negative", "accuracy",
                                  "drawn_per_hard", "drawn_per_easy"]].round(2)
"""),
    md("""
## The data map of the uniform run

`Dynamics` recorded, for every training sample, the mean probability of its label over the epochs (`mean_label_prob`,
dataset cartography's *confidence*), its standard deviation (*variability*) and the fraction of epochs the model was
right (*correctness*). Plotted against each other they form the data map of dataset cartography: easy-to-learn samples
at the top left, hard-to-learn samples at the bottom left, ambiguous ones to the right. The positives of this rare task
sit low and to the right.
"""),
    code("""
dyn_table = dynamics_regions(dynamics[("uniform", 0)].summary())
dyn_table["positive"] = train_b.tensors[1].numpy() == 1
print(dyn_table.groupby("positive")[["mean_label_prob", "variability", "correctness"]].mean().round(3))
hmplot.data_map(dyn_table)
"""),
]


IMAGES_ON_DISK = [
    md("""
# Images on disk: an image folder, a torchvision model and fine-tuning on the hard samples

Most image datasets are folders of files, one sub-folder per class, read with torchvision's `ImageFolder`. This
notebook

1. writes such a tree itself (the bundled digits upscaled to 32x32 PNG files, nothing downloaded),
2. trains a torchvision ResNet-18 from scratch on it for a few epochs,
3. scores every file: the `id` column of the table holds its **file path**,
4. exports the hard-sample list to CSV (paths included) and shows those files, and
5. **fine-tunes** on the hard samples: the layers are kept, only the output layer is trained further.

It takes about a minute on a CPU.
"""),
    code(
        setup(
            "04",
            unused=("from hardmine.app.demo import digits_cnn, load_digits_tensors",),
            replace={
                "from torch.utils.data import DataLoader, TensorDataset": "from torch.utils.data import DataLoader"
            },
        )
    ),
    code('''
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.models import resnet18

digits = load_digits()
order = np.random.default_rng(0).permutation(len(digits.target))


def write_tree(root: Path, indices: np.ndarray) -> None:
    """root/<class>/digit_<n>.png, 32x32 greyscale, the layout ImageFolder reads."""
    for i in indices:
        folder = root / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.BILINEAR).save(folder / f"digit_{i:04d}.png")


write_tree(out / "digits" / "train", order[:400])
write_tree(out / "digits" / "test", order[400:600])
print(sorted(str(p.relative_to(out)) for p in (out / "digits" / "train").glob("*/*.png"))[:3], "...")
'''),
    md("""
`ImageFolder` turns each sub-folder into a class (in sorted order) and each file into a sample; the folder name is
the ground-truth label. Its loader opens every image as RGB, so the 3-channel ResNet takes the greyscale digits as
they are.
"""),
    code(TRAIN_EPOCH),
    code("""
tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
train_set = ImageFolder(out / "digits" / "train", transform=tf)
test_set = ImageFolder(out / "digits" / "test", transform=tf)
print(f"{len(train_set)} training files, {len(test_set)} test files, classes {train_set.classes}")

torch.manual_seed(0)
model = resnet18(weights=None, num_classes=10)  # built from scratch: no download
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loader = DataLoader(train_set, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
test_loader = DataLoader(test_set, batch_size=100)

t0 = time.perf_counter()
for epoch in range(3):
    model.train()
    train_epoch(model, loader, opt)
    test_scores = hm.score(model, test_loader, progress=False)
    print(f"epoch {epoch + 1}: test accuracy {(test_scores['pred'] == test_scores['label']).mean():.3f} "
          f"({time.perf_counter() - t0:.0f} s)")
"""),
    md("""
## Score the files and export the hard ones

For an `ImageFolder` (also inside a `Subset`), `hm.score` fills the `id` column with each file's path. We take the
digit 3 as the positive class and call a sample hard when the probability of its label is below 0.7.
"""),
    code("""
scores = hm.score(model, loader)  # a progress bar while it runs
table = hm.split(scores, threshold=0.7, positive=3)
before = hm.summary(table)
before
"""),
    code("""
path = hm.to_csv(table, out / "hard.csv", only="hard")
hard = hm.read_csv(path)
print(f"{len(hard)} hard samples in {path}")
# The id column holds each file's full path; shown here relative to the output folder.
hard[["index", "id", "label", "pred", "label_prob", "group"]].head(6).assign(
    id=lambda t: [str(Path(p).relative_to(out)) for p in t["id"]])
"""),
    md("""
With no dataset given, the gallery opens the files named in the `id` column, as they are on disk:
"""),
    code("""
hmplot.gallery(hard, group="hard", n=12, ncols=6, classes=train_set.classes)
"""),
    md("""
## Fine-tune on the hard samples

Fine-tuning keeps a trained network's layers and trains part of it further on new data. Here the new data are the
hard samples of the CSV, a `Subset` of the image folder by its `index` column. With this little data we freeze every
layer except the output layer `fc` and keep the network in evaluation mode, so BatchNorm's statistics stay as they
were; only `fc`'s weights learn.
"""),
    code("""
for p in model.parameters():
    p.requires_grad_(False)
model.fc.requires_grad_(True)

hard_set = Subset(train_set, hard["index"].tolist())
hard_loader = DataLoader(hard_set, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))
opt = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
model.eval()
t0 = time.perf_counter()
for _ in range(5):
    train_epoch(model, hard_loader, opt)  # the model stays in eval mode
print(f"fine-tuned fc on {len(hard_set)} hard samples for 5 epochs in {time.perf_counter() - t0:.1f} s")
"""),
    md("""
Re-score the whole training folder with the same threshold: how did the groups change? Hard samples can become easy,
and, since only hard samples were seen, some easy ones may turn hard; the test set says whether the model improved
overall.
"""),
    code("""
after_table = hm.split(hm.score(model, loader, progress=False), threshold=0.7, positive=3)
after = hm.summary(after_table)
test_after = hm.score(model, test_loader, progress=False)
right_before = int((test_scores["pred"] == test_scores["label"]).sum())
right_after = int((test_after["pred"] == test_after["label"]).sum())
print(f"test accuracy: {right_before / len(test_after):.3f} before, {right_after / len(test_after):.3f} after "
      f"fine-tuning ({right_after - right_before:+d} of {len(test_after)} test images)")
print(f"hard training samples: {before.groups['count'].filter(like='hard').sum()} before, "
      f"{after.groups['count'].filter(like='hard').sum()} after")
pd.DataFrame({"before": before.groups["count"], "after": after.groups["count"]})
"""),
    md("""
The lines above say what fine-tuning did on your machine. The numbers themselves vary from one CPU to another: the
order of floating-point sums differs between instruction sets (AVX2, AVX-512), and three epochs of training from
scratch amplify it into a different network. On every CPU we ran this on, fine-tuning on the hard samples raised the
test accuracy and the training folder's hard samples fell, most of them hard negatives that became easy; the gain
was 4 of the 200 test images on one CPU and 30 on another, where the network started weaker. A gain of a few images
is small and noisy. Fine-tuning on hard samples alone can also
*lower* test accuracy, as the model forgets what it already got right; mixing in some easy samples, or drawing the
hard ones more often with `HardMiner` (notebook 03) instead of training on them alone, guards against that.
"""),
    code("""
hmplot.label_prob_histogram(after_table)
"""),
]


DENSE = [
    md("""
# Hard images: segmentation and detection

Hard example mining was born in detection and lives on in segmentation. hardmine scores both **one row per image**,
so the hardest images can be listed, exported, split and drawn more often in training. This notebook builds two
synthetic tasks (squares on noise, nothing downloaded) and shows their hardest images:

1. **segmentation**: a small network trained for a few steps with the OHEM pixel loss, scored per image (loss,
   true-class probability, pixel accuracy, hard-pixel fraction, mIoU), with the per-class IoU;
2. **detection**: a simple blob detector scored against the ground-truth boxes (recall, precision, misses, false
   positives, mistakenness), with the per-box table of misses and false positives.

It runs in a few seconds on a CPU.
"""),
    code(
        setup(
            "05",
            unused=(
                "from hardmine.app.demo import digits_cnn, load_digits_tensors",
                "import time",
                "import pandas as pd",
                "import hardmine.analysis.plot as hmplot",
            ),
        )
    ),
    md("""
## Segmentation: squares on noise

Class 1 is a square, class 2 a brighter square; the top edge of every square is marked 255 (ignored), as VOC marks
object borders. A two-layer network learns it for a few steps with `hm.ohem_pixel_loss`, which keeps the pixels
whose true-class probability is below 0.7 (and at least the 256 hardest).
"""),
    code("""
torch.manual_seed(0)
n, size = 96, 24
x = torch.randn(n, 1, size, size) * 0.6
y = torch.zeros(n, size, size, dtype=torch.long)
for i in range(n):
    r, c = torch.randint(0, size - 8, (2,)).tolist()
    s = int(torch.randint(3, 9, ()))
    y[i, r : r + s, c : c + s] = 1 + i % 2
    x[i, 0, r : r + s, c : c + s] += 1.0 + 0.6 * (i % 2)
    y[i, r, c : c + s] = 255
seg_data = TensorDataset(x, y)
seg_loader = DataLoader(seg_data, batch_size=32, shuffle=True)

seg_model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 3, 3, padding=1))
opt = torch.optim.Adam(seg_model.parameters(), lr=0.02)
for _ in range(6):
    for xb, yb in seg_loader:
        opt.zero_grad()
        hm.ohem_pixel_loss(seg_model(xb), yb, thresh=0.7, min_kept=256).backward()
        opt.step()

seg_scores = hm.score(seg_model, seg_loader)  # detected: segmentation; a progress bar while it runs
print(seg_scores.attrs["hardmine"])
seg_scores[["index", "loss", "label_prob", "pixel_accuracy", "hard_pixel_fraction", "miou", "valid_pixels"]].head()
"""),
    md("""
The hardest quarter by `label_prob`, and the per-class IoU of the whole set against that of the hard images
(`hm.segmentation_summary` sums the per-image intersections and unions of the rows it is given).
"""),
    code("""
seg_table = hm.split(seg_scores, hard_fraction=0.25)
names = ["background", "square", "bright square"]
print(hm.segmentation_summary(seg_table, classes=names)[["name", "iou", "images"]])
hard = seg_table[seg_table["difficulty"] == "hard"]
print(hm.segmentation_summary(hard, classes=names)[["name", "iou", "images"]])
sizes = (y > 0).flatten(1).sum(1).numpy()
easy = seg_table.loc[seg_table["difficulty"] == "easy", "index"]
print("mean object pixels, hard vs easy images:", sizes[hard["index"]].mean().round(1), sizes[easy].mean().round(1))
hm.to_csv(seg_table, out / "hard_images.csv")
hm.plot_dense.segmentation_gallery(seg_table, seg_data, seg_model, k=4)
"""),
    md("""
After six short epochs the network has learned the background and, in part, the bright square (IoU about 0.56),
but not the dim square yet: its IoU is about 0, so every pixel of a dim square is a hard pixel. That is why the
hardest quarter holds the images with the most object pixels, more than twice as many on average as the easy ones.
More training would shift the hard set from "large dim objects" to the truly ambiguous images.
"""),
    md("""
## Detection: a blob detector

Each image holds up to three squares (class 1) on noise, some of them dim. The "model" thresholds the image and
returns the bounding box of every connected blob, scored by its brightness: an `nn.Module` with torchvision's
detection interface (a list of images in, a list of `boxes`/`labels`/`scores` dicts out), so `hm.score_detection`
treats it as it treats `fasterrcnn_*`. It misses dim squares, merges touching ones and fires on bright noise.
"""),
    code("""
from scipy import ndimage


class BlobDetector(nn.Module):
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for image in images:
            bright = image.mean(0).numpy()
            blobs, _ = ndimage.label(ndimage.uniform_filter(bright, 3) > 0.45)
            boxes, scores = [], []
            for sl in ndimage.find_objects(blobs):
                boxes.append([sl[1].start, sl[0].start, sl[1].stop, sl[0].stop])
                scores.append(float(np.clip(bright[sl].mean() * 1.2, 0, 1)))
            out.append(
                {
                    "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    "labels": torch.ones(len(boxes), dtype=torch.long),
                    "scores": torch.tensor(scores, dtype=torch.float32),
                }
            )
        return out


g = torch.Generator().manual_seed(1)
det_data = []
for _ in range(40):
    image = torch.rand(3, 48, 48, generator=g) * 0.5
    boxes = []
    for _ in range(int(torch.randint(0, 4, (), generator=g))):
        x1, y1 = torch.randint(0, 36, (2,), generator=g).tolist()
        s = int(torch.randint(5, 12, (), generator=g))
        x2, y2 = min(x1 + s, 48), min(y1 + s, 48)
        image[:, y1:y2, x1:x2] += float(torch.rand((), generator=g)) * 0.6 + 0.1
        boxes.append([x1, y1, x2, y2])
    boxes_t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    det_data.append((image.clamp(0, 1), {"boxes": boxes_t, "labels": torch.ones(len(boxes), dtype=torch.long)}))

det_loader = DataLoader(det_data, batch_size=8, collate_fn=lambda b: tuple(zip(*b, strict=True)))
det_table, det_boxes = hm.score_detection(BlobDetector(), det_loader, return_boxes=True, progress=False)
det_table.sort_values("mistakenness", ascending=False).head()
"""),
    md("""
`mistakenness` is one minus the image's F1 score with every match weighted by its IoU: misses, false positives and
loose boxes all raise it. The per-box table lists every missed ground-truth box and every confident false positive
(the hard negatives) and goes to CSV as it is. In the gallery, ground truth is green, misses red and dashed, false
positives orange with their scores.
"""),
    code("""
print(det_table[["det_recall", "det_precision", "missed", "false_pos", "mistakenness"]].mean().round(3))
det_boxes.to_csv(out / "hard_boxes.csv", index=False)
print(det_boxes["kind"].value_counts())
det_split = hm.split(det_table, hard_fraction=0.25)
hm.plot_dense.detection_gallery(det_split, det_boxes, det_data, k=4)
"""),
]


NOTEBOOKS: dict[str, list[nbformat.NotebookNode]] = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_precision_recall.ipynb": PRECISION_RECALL,
    "03_hard_example_training.ipynb": HARD_TRAINING,
    "04_images_on_disk.ipynb": IMAGES_ON_DISK,
    "05_hard_images_dense.ipynb": DENSE,
}


def build(name: str) -> str:
    """The text of notebook ``name``: nbformat 4, outputs empty, cell ids fixed so that the files are stable."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    stem = name.split("_")[0]
    for k, cell in enumerate(NOTEBOOKS[name]):
        cell = nbformat.from_dict(dict(cell))
        cell.id = f"nb{stem}-{k:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        text = build(name)
        path = HERE / name
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print(f"out of date with notebooks/_build.py: {stale}; run `python notebooks/_build.py`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
