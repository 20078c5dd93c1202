"""Models for the command line: torchvision classification architectures, and weights read from any checkpoint.

:func:`build_model` makes a torchvision classifier with a given class count; :func:`load_weights` finds the
``state_dict`` inside a checkpoint file (bare, or under one of :data:`STATE_DICT_KEYS`; ``module.`` and ``_orig_mod.``
prefixes of DDP and ``torch.compile`` removed) and says what does not fit. Importable from
:mod:`hardmine.app.images` too.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["STATE_DICT_KEYS", "build_model", "classification_architectures", "load_weights"]

#: Keys under which training scripts commonly store the state_dict inside a checkpoint dict, tried in this order.
STATE_DICT_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "net", "weights", "model_state")
_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")


def classification_architectures() -> list[str]:
    """The names of torchvision's image classification architectures (``resnet18``, ``vit_b_16`` ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_model(arch: str, num_classes: int) -> nn.Module:
    """A torchvision classification model with ``num_classes`` outputs and untrained weights (nothing downloaded).

    Raises:
        ValueError: for a name that is not a torchvision classification architecture, suggesting close names.

    Example:
        >>> build_model("resnet18", 3).fc.out_features
        3
    """
    import torchvision

    names = classification_architectures()
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown architecture {arch!r}: expected a torchvision classification model such as "
            f"resnet18, resnet50, mobilenet_v3_small, efficientnet_b0, vit_b_16.{hint}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # inception_v3/googlenet warn about their init defaults
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def _find_state_dict(obj: Any, where: str) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                return dict(inner)
        keys = [str(k) for k in list(obj.keys())[:10]]
        raise ValueError(
            f"{where} holds a dict without a state_dict: expected tensors by parameter name, or one "
            f"under {', '.join(repr(k) for k in STATE_DICT_KEYS)}; its keys are {keys}."
        )
    raise ValueError(
        f"{where} holds a {type(obj).__name__}, not a state_dict: save `model.state_dict()` with torch.save."
    )


def _strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _list(keys: Sequence[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _text_head(path: Path, size: int = 512) -> str | None:
    """The first line of ``path`` when the file is text (no NUL byte, valid UTF-8), else ``None``.

    A PyTorch checkpoint is a zip archive (or, from old versions, a pickle); either holds NUL bytes or non-UTF-8
    bytes in its first 512 bytes, text never does.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
    except OSError:
        return None
    if not head or b"\0" in head:
        return None
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # a character cut at the end of the block is still text
            return None
        decoded = head[: err.start].decode("utf-8")
    if any(ord(c) < 32 and c not in "\t\r\n" for c in decoded):
        return None
    first = decoded.splitlines()[0] if decoded.strip() else decoded
    return first[:60]


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], *, arch: str | None = None, num_classes: int | None = None
) -> nn.Module:
    """Load a checkpoint of the user's own into ``model``, safely and strictly.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``: tensors and plain containers
    only, never arbitrary pickled code. It may hold a state_dict or a dict with one under ``"state_dict"``,
    ``"model_state_dict"``, ``"model"``, ``"net"``, ``"weights"`` or ``"model_state"``; ``module.`` (DataParallel,
    DDP) and ``_orig_mod.`` (torch.compile) prefixes are removed. Every key must match the model in name and shape.

    Args:
        model: the freshly built model.
        path: the checkpoint file.
        arch: the architecture name, for error messages.
        num_classes: the model's class count, for error messages.

    Returns:
        ``model`` with the weights loaded.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file is not a weights-only PyTorch checkpoint, holds no state_dict, or does not fit the
            model (naming the missing, unexpected and mismatched keys).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     torch.save({"epoch": 3, "model": nn.Linear(2, 3).state_dict()}, f"{d}/ckpt.pt")
        ...     load_weights(nn.Linear(2, 3), f"{d}/ckpt.pt").out_features
        3
    """
    import pickle

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"The weights file {str(p)!r} does not exist.")
    where = f"The weights file {str(p)!r}"
    text = _text_head(p)
    if text is not None:
        raise ValueError(
            f"{where} is not a readable PyTorch checkpoint: it is a text file (it starts with {text!r}). Pass the "
            "file that torch.save(model.state_dict(), path) wrote."
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" not in str(err).lower():
            raise ValueError(f"{where} is not a readable PyTorch checkpoint ({str(err).splitlines()[0]}).") from err
        raise ValueError(
            f"{where} holds Python objects that a weights-only load refuses (hardmine never unpickles "
            "arbitrary code): save `model.state_dict()` (tensors only) with torch.save."
        ) from err
    except Exception as err:  # noqa: BLE001 - a garbage file fails anywhere in the unpickler (KeyError, EOFError ...)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{where} is not a readable PyTorch checkpoint ({reason}).") from err
    state = _strip_prefixes(_find_state_dict(obj, where))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} in the file vs {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in state and isinstance(v, Tensor) and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        what = arch or type(model).__name__
        if num_classes is not None:
            what += f" with {num_classes} classes"
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} with another shape ({_list(shapes, 3)})")
        if missing:
            parts.append(f"{len(missing)} missing ({_list(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_list(unexpected)})")
        raise ValueError(
            f"{where} does not fit {what}: keys {'; '.join(parts)}. Is it for another architecture or "
            "another number of classes?"
        )
    model.load_state_dict(state, strict=True)
    return model
