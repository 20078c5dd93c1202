"""PyTorch's imagenet example (pytorch/examples, imagenet/main.py), trimmed, on generated images, with hard mining.

Kept from the original: the command line (``--arch``, ``--epochs``, ``--batch-size``, ``--lr``, ``--momentum``,
``--wd``, ``--print-freq``, ``--seed``, ``--evaluate``), a torchvision model built from scratch
(``models.__dict__[arch]()``, no weights), ``ImageFolder`` with ``RandomResizedCrop`` and ``RandomHorizontalFlip``
for training and ``Resize`` + ``CenterCrop`` for validation, SGD with StepLR, ``train``/``validate`` with
``AverageMeter``/``ProgressMeter`` and top-1/top-5 ``accuracy``. Left out: multiprocessing-distributed launch, AMP,
checkpoints. No download: ``--generate N`` writes N small images per class into ``DIR/train`` and ``DIR/val`` (each
class a colour and a shape, with noise), unless they are there already.

Hard mining takes the lines marked ``# hardmine``: the training loader becomes a ``HardMiner`` that re-scores with a
loader of its own over the same training images with the *validation* transforms (``score_loader``), so the scores
do not change from pass to pass with the random crops and flips.

    python examples/imagenet.py /tmp/shapes --generate 40 --arch resnet18 --epochs 3 -b 32
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.utils.data
import torchvision.datasets as datasets
import torchvision.models as models
import torchvision.transforms as transforms
from PIL import Image
from torch.optim.lr_scheduler import StepLR

import hardmine as hm  # hardmine

model_names = sorted(
    name for name in models.__dict__ if name.islower() and not name.startswith("__") and callable(models.__dict__[name])
)

parser = argparse.ArgumentParser(description="PyTorch ImageNet Training (trimmed, generated images)")
parser.add_argument("data", metavar="DIR", help="path to dataset (with train/ and val/ image folders)")
parser.add_argument("-a", "--arch", metavar="ARCH", default="resnet18", choices=model_names)
parser.add_argument("-j", "--workers", default=0, type=int, metavar="N")
parser.add_argument("--epochs", default=90, type=int, metavar="N")
parser.add_argument("-b", "--batch-size", default=256, type=int, metavar="N")
parser.add_argument("--lr", "--learning-rate", default=0.1, type=float, metavar="LR", dest="lr")
parser.add_argument("--momentum", default=0.9, type=float, metavar="M")
parser.add_argument("--wd", "--weight-decay", default=1e-4, type=float, metavar="W", dest="weight_decay")
parser.add_argument("-p", "--print-freq", default=10, type=int, metavar="N")
parser.add_argument("-e", "--evaluate", dest="evaluate", action="store_true")
parser.add_argument("--seed", default=None, type=int)
parser.add_argument("--image-size", default=224, type=int, help="crop size (the original: 224)")
parser.add_argument("--generate", default=0, type=int, metavar="N", help="write N generated images per class")
parser.add_argument("--classes", default=4, type=int, help="classes of generated images")


def generate(root: str, per_class: int, classes: int, size: int = 48) -> None:
    """Write ``per_class`` training and ``per_class // 2`` validation images for each class (PNG files)."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 215, size=(classes, 3))
    for split, count in (("train", per_class), ("val", max(2, per_class // 2))):
        for c in range(classes):
            folder = os.path.join(root, split, f"class{c}")
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                img = rng.normal(128, 40, size=(size, size, 3))
                lo, hi = sorted(rng.integers(4, size - 4, size=2))
                if c % 2 == 0:
                    img[lo : hi + 4, lo : hi + 4] = colours[c]  # a square
                else:
                    img[:, lo : lo + 6] = colours[c]  # a bar
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i}.png"))


def main(argv=None):
    args = parser.parse_args(argv)
    if args.seed is not None:
        random.seed(args.seed)
        torch.manual_seed(args.seed)
    if args.generate and not os.path.isdir(os.path.join(args.data, "train")):
        generate(args.data, args.generate, args.classes)
    return main_worker(args)


def main_worker(args):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    traindir = os.path.join(args.data, "train")
    valdir = os.path.join(args.data, "val")
    num_classes = len(os.listdir(traindir))
    print(f"=> creating model '{args.arch}'")
    model = models.__dict__[args.arch](num_classes=num_classes).to(device)

    criterion = nn.CrossEntropyLoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)

    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    train_dataset = datasets.ImageFolder(
        traindir,
        transforms.Compose(
            [
                transforms.RandomResizedCrop(args.image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        ),
    )
    val_transform = transforms.Compose(
        [
            transforms.Resize(int(args.image_size * 256 / 224)),
            transforms.CenterCrop(args.image_size),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val_dataset = datasets.ImageFolder(valdir, val_transform)
    train_sampler = None
    train_loader = torch.utils.data.DataLoader(
        train_dataset,
        batch_size=args.batch_size,
        shuffle=(train_sampler is None),
        num_workers=args.workers,
        pin_memory=torch.cuda.is_available(),
        sampler=train_sampler,
    )
    val_loader = torch.utils.data.DataLoader(
        val_dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers
    )
    score_set = datasets.ImageFolder(traindir, val_transform)  # hardmine
    score_loader = torch.utils.data.DataLoader(score_set, args.batch_size)  # hardmine
    train_loader = hm.HardMiner(model, train_loader, score_loader=score_loader, progress=False)  # hardmine

    if args.evaluate:
        return validate(val_loader, model, criterion, args, device)

    acc1 = 0.0
    for epoch in range(args.epochs):
        train(train_loader, model, criterion, optimizer, epoch, device, args)
        acc1 = validate(val_loader, model, criterion, args, device)
        scheduler.step()
    print(train_loader.history[["epoch", "hard", "accuracy", "seconds"]])  # hardmine
    return acc1


def train(train_loader, model, criterion, optimizer, epoch, device, args):
    batch_time = AverageMeter("Time", ":6.3f")
    losses = AverageMeter("Loss", ":.4e")
    top1 = AverageMeter("Acc@1", ":6.2f")
    progress = ProgressMeter(len(train_loader), [batch_time, losses, top1], prefix=f"Epoch: [{epoch}]")
    model.train()
    end = time.time()
    for i, (images, target) in enumerate(train_loader):
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        (acc1,) = accuracy(output, target, topk=(1,))
        losses.update(loss.item(), images.size(0))
        top1.update(acc1[0], images.size(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        batch_time.update(time.time() - end)
        end = time.time()
        if i % args.print_freq == 0:
            progress.display(i + 1)


def validate(val_loader, model, criterion, args, device):
    losses = AverageMeter("Loss", ":.4e")
    top1 = AverageMeter("Acc@1", ":6.2f")
    model.eval()
    with torch.no_grad():
        for images, target in val_loader:
            images, target = images.to(device), target.to(device)
            output = model(images)
            losses.update(criterion(output, target).item(), images.size(0))
            (acc1,) = accuracy(output, target, topk=(1,))
            top1.update(acc1[0], images.size(0))
    print(f" * Acc@1 {top1.avg:.3f} Loss {losses.avg:.4f}")
    return float(top1.avg)


class AverageMeter:
    """Computes and stores the average and current value."""

    def __init__(self, name, fmt=":f"):
        self.name, self.fmt = name, fmt
        self.val = self.avg = self.sum = self.count = 0

    def update(self, val, n=1):
        self.val = float(val)
        self.sum += float(val) * n
        self.count += n
        self.avg = self.sum / self.count

    def __str__(self):
        return ("{name} {val" + self.fmt + "} ({avg" + self.fmt + "})").format(**self.__dict__)


class ProgressMeter:
    def __init__(self, num_batches, meters, prefix=""):
        width = len(str(num_batches))
        self.batch_fmtstr = "[{:" + str(width) + "d}/" + str(num_batches) + "]"
        self.meters, self.prefix = meters, prefix

    def display(self, batch):
        print("\t".join([self.prefix + self.batch_fmtstr.format(batch)] + [str(m) for m in self.meters]))


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k."""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        return [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / batch_size) for k in topk]


if __name__ == "__main__":
    main()
