"""The one write path of hardmine: every file it writes (tables, reports, lists, JSON, checkpoints) goes through here.

What a write guarantees (see docs/reliability.md):

- **Atomic** for regular files: the data goes to a temporary file beside the destination, is flushed to disk, and
  replaces the destination in one ``os.replace``; a reader sees the old file or the complete new one.
- **Modes**: a new file gets ``0666 & ~umask`` (what ``open()`` would give); a replaced file keeps its mode (and, as
  root, its owner). A read-only destination is refused, never silently replaced.
- **Symlinks** are written through: the link stays and its target gets the new content (atomically, beside the
  target).
- **Not a regular file**: a character device or a FIFO (``/dev/null``, a named pipe) and the names of open file
  descriptors (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``, whatever they point to) are written straight to,
  never replaced; a folder, socket or block device is refused. ``-`` means standard output for text.
- **Inputs are never outputs**: a destination that is one of the run's input files (the same file, whatever the path
  spelling, links included) is refused before anything is written.
- **Compression** follows the destination's suffix (``.gz``, ``.bz2``, ``.xz``, ``.zst``), see :func:`compression_of`.
- **Leftovers**: temporary files are named ``.<name>.<host>-<pid>-<random>.hardmine-tmp``; one left by a killed
  process (``kill -9``) is removed by the next write to the same destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["TEMP_SUFFIX", "OutputTarget", "atomic_path", "compression_of", "is_stdout", "resolve_output"]

PathLike = str | os.PathLike[str]
#: The suffix of every temporary file hardmine writes.
TEMP_SUFFIX = ".hardmine-tmp"
#: A leftover temporary file of another host (shared file system) is removed only when older than this (seconds).
_STALE_SECONDS = 24 * 3600
#: A temporary file in hardmine 0.2.0's naming is removed when older than this (seconds).
_OLD_STYLE_SECONDS = 3600
_COMPRESSION: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


#: Names of this process's standard output, written through ``sys.stdout`` (never reopened: reopening a shell's
#: ``> file`` would truncate what was already printed).
_STDOUT_NAMES = ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def is_stdout(dest: object) -> bool:
    """Whether ``dest`` names standard output: ``"-"`` (or ``/dev/stdout``, ``/dev/fd/1``, ``/proc/self/fd/1``).

    Example:
        >>> is_stdout("-"), is_stdout("/dev/stdout"), is_stdout("out.csv")
        (True, True, False)
    """
    return isinstance(dest, (str, os.PathLike)) and os.fspath(dest) in _STDOUT_NAMES


def compression_of(path: PathLike) -> str | None:
    """The compression that the suffix of ``path`` asks for, as pandas names it, or ``None``.

    Example:
        >>> compression_of("t.csv.gz"), compression_of("t.csv.bz2"), compression_of("t.csv")
        ('gzip', 'bz2', None)
    """
    return _COMPRESSION.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class OutputTarget:
    """Where a write goes, after symlinks are followed.

    Attributes:
        path: the file that receives the data (the target of a symlink); for ``kind="stream"`` the path as given.
        kind: ``"file"`` (a regular file, or a new one: written atomically) or ``"stream"`` (a character device or
            FIFO: written straight to).
        existing_mode: the permission bits of the regular file that will be replaced, ``None`` for a new file.
    """

    path: Path
    kind: Literal["file", "stream"]
    existing_mode: int | None = None


def _same_file(a: Path, b: PathLike) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def resolve_output(dest: PathLike, *, inputs: Iterable[PathLike | None] = (), what: str = "output") -> OutputTarget:
    """Check that ``dest`` may be written and say how: atomically (a regular file) or straight (a device, a FIFO).

    Args:
        dest: the destination path (not ``"-"``: callers handle standard output first).
        inputs: the files the run reads; ``dest`` may not be any of them.
        what: what is written, for messages (``"the HTML report"``).

    Raises:
        ValueError: when ``dest`` is one of ``inputs``, a folder, or a socket or block device.
        FileNotFoundError: when the folder of ``dest`` does not exist.
        PermissionError: when ``dest`` is read-only or its folder is not writable.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "in.csv")
        ...     _ = open(p, "w").write("x")
        ...     try:
        ...         resolve_output(p, inputs=[p], what="the table")
        ...     except ValueError as err:
        ...         print(str(err).split(":")[0].startswith("Refusing to write the table"))
        True
    """
    given = Path(dest)
    for source in inputs:
        if source is not None and not is_stdout(source) and _same_file(given, source):
            raise ValueError(
                f"Refusing to write {what} to {str(given)!r}: it is one of this run's inputs ({str(source)!r}) and "
                "would be destroyed. Name another output file."
            )
    if _is_fd_alias(given):  # /dev/stdout -> a shell's `> file`: write to the open file, never replace it
        return OutputTarget(path=given, kind="stream")
    try:
        st = os.stat(given)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise ValueError(f"Cannot write {what} to {str(given)!r}: {err.strerror or err}.") from err
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(
                f"Cannot write {what} to {str(given)!r}: it is a folder; name a file in it, e.g. "
                f"{os.path.join(str(given), 'out.csv')!r}."
            )
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            return OutputTarget(path=given, kind="stream")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(
                f"Cannot write {what} to {str(given)!r}: it is neither a regular file, a character device nor a pipe."
            )
        if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(
                f"Refusing to replace {str(given)!r} ({what}): the file is read-only (mode "
                f"{stat.S_IMODE(st.st_mode):04o}). Make it writable or name another file."
            )
    target = Path(os.path.realpath(given))  # a symlink is written through: its target gets the data
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot write {what} to {str(given)!r}: the folder {str(folder)!r} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write {what} to {str(given)!r}: no permission to write in {str(folder)!r}.")
    return OutputTarget(path=target, kind="file", existing_mode=None if st is None else stat.S_IMODE(st.st_mode))


_FD_ALIASES = re.compile(r"^/(?:dev/(?:stdout|stderr|fd/\d+)|proc/(?:self|\d+)/fd/\d+)$")


def _is_fd_alias(path: Path) -> bool:
    """``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/1``: names of an open file descriptor, written straight."""
    return bool(_FD_ALIASES.match(os.path.abspath(path)))


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    return True


def remove_leftovers(target: Path) -> list[Path]:
    """Remove temporary files that a killed hardmine process left beside ``target``; returns those removed.

    A leftover is ``.<target name>.<host>-<pid>-<random>.hardmine-tmp`` whose process is gone (same host), or, from
    another host, one older than a day; or one in hardmine 0.2.0's naming (``.<name>.<8 characters>.csv.tmp``) older
    than an hour.
    """
    removed: list[Path] = []
    host = _host_tag()
    try:
        stem = _temp_stem(target.name)
        candidates = list(target.parent.glob(f".{_glob_escape(stem)}.*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    # hardmine 0.2.0 named them `.<name>.<8 random characters><suffix>` (mkstemp): removed once an hour old.
    old_style = re.compile(rf"^\.{re.escape(target.name)}\.[a-z0-9_]{{8}}(?:\.csv|\.parquet)?\.tmp$")
    with contextlib.suppress(OSError):
        for path in target.parent.glob(f".{_glob_escape(target.name)}.*.tmp"):
            with contextlib.suppress(OSError):
                if old_style.match(path.name) and time.time() - path.lstat().st_mtime > _OLD_STYLE_SECONDS:
                    path.unlink()
                    removed.append(path)
    for path in candidates:
        tag = path.name[len(stem) + 2 : -len(TEMP_SUFFIX)]
        parts = tag.split("-")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        try:
            age = time.time() - path.lstat().st_mtime
        except OSError:
            continue
        stale = not _pid_alive(int(parts[1])) if parts[0] == host else age > _STALE_SECONDS
        if stale:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _temp_stem(name: str) -> str:
    """The destination's name as it appears in its temporary files, shortened (with a hash) when it is long.

    So ``.<name>.<host>-<pid>-<random>.hardmine-tmp`` stays within the 255-byte limit of file names.
    """
    if len(name.encode("utf-8", "surrogateescape")) <= 180:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return name.encode("utf-8", "surrogateescape")[:120].decode("utf-8", "ignore") + "~" + digest


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextlib.contextmanager
def atomic_path(
    dest: PathLike, *, suffix: str = TEMP_SUFFIX, inputs: Iterable[PathLike | None] = (), what: str = "output"
) -> Iterator[Path]:
    """Yield the path to write ``dest``'s new content to; on success it becomes ``dest`` in one step.

    For a regular (or new) file the path is a temporary file beside the real destination (a symlink's target); on
    success it is flushed, given the mode (see the module docstring) and moved onto the destination. For a
    character device or FIFO the path is ``dest`` itself (written straight, never replaced). On any error the
    temporary file is removed and ``dest`` is left as it was. ``suffix`` is accepted for compatibility; every
    temporary file ends in :data:`TEMP_SUFFIX`.

    Raises:
        ValueError: when ``dest`` is one of ``inputs``, a folder or another special file.
        FileNotFoundError: when the folder of ``dest`` does not exist.
        PermissionError: when ``dest`` is read-only or its folder is not writable.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(os.path.join(d, "a.txt")) as tmp:
        ...         _ = tmp.write_text("complete")
        ...     print(open(os.path.join(d, "a.txt")).read(), os.listdir(d))
        complete ['a.txt']
    """
    del suffix
    out = resolve_output(dest, inputs=inputs, what=what)
    if out.kind == "stream":
        yield out.path
        return
    target = out.path
    remove_leftovers(target)
    stem = _temp_stem(target.name)
    tmp_path = target.parent / f".{stem}.{_host_tag()}-{os.getpid()}-{os.urandom(4).hex()}{TEMP_SUFFIX}"
    try:
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except PermissionError as err:
        raise PermissionError(
            f"Cannot write {what} to {str(dest)!r}: no permission to write in {str(target.parent)!r}."
        ) from err
    os.close(fd)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        mode = out.existing_mode if out.existing_mode is not None else 0o666 & ~_umask()
        os.chmod(tmp_path, mode)
        if out.existing_mode is not None and getattr(os, "geteuid", lambda: -1)() == 0:
            with contextlib.suppress(OSError):
                st = os.stat(target)
                os.chown(tmp_path, st.st_uid, st.st_gid)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
