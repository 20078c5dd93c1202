"""Atomic file writes: a reader sees the old file or the complete new one, never a partial write."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success fsync it and ``os.replace`` it onto ``dest``.

    On any error the temporary file is removed and ``dest`` is left as it was.

    Raises:
        FileNotFoundError: when the folder of ``dest`` does not exist.
        PermissionError: when that folder is not writable.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(os.path.join(d, "a.txt")) as tmp:
        ...         _ = tmp.write_text("complete")
        ...     print(open(os.path.join(d, "a.txt")).read(), os.listdir(d))
        complete ['a.txt']
    """
    target = Path(dest)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write {str(target)!r}: the folder {str(folder)!r} does not exist.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=folder)
    except PermissionError as err:
        raise PermissionError(f"Cannot write {str(target)!r}: no permission to write in {str(folder)!r}.") from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
