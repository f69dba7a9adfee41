"""Writing the CLI's outputs safely: locations checked before any work, files written whole or not at all.

Every output goes to a temporary file in its own folder and is renamed into place once complete, so a
failure (or Ctrl-C) never leaves a half-written file, and an existing file is only replaced by a whole one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from isa.errors import UserError


def _writable_folder(folder: Path, target: Path) -> None:
    if not folder.exists():
        raise UserError(f"{target}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise UserError(f"{target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{target}: cannot write in {folder} (permission denied)")


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """`path` as a Path if a file can be written there; a one-line UserError saying why not otherwise."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a folder; give a file name for the {what}")
    _writable_folder(p.parent, p)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{p}: exists and is read-only; remove it or choose another {what}")
    return p


def check_output_folder(path: str | Path, files: Sequence[str] = ()) -> Path:
    """`path` as a Path if it is (or can be created as) a folder where each of `files` can be written."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{p}: exists and is not a folder; give a folder for the output")
        _writable_folder(p, p)
        for name in files:
            check_output_file(p / name, f"output file {name}")
        return p
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    _writable_folder(ancestor, p)
    return p


def _permissions() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def staged_files(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Temporary paths beside each of `paths`; all renamed into place when the block succeeds, else removed."""
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        for t in targets:
            t.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=t.parent, prefix=f".{t.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(Path(name))
        yield temps
        mode = _permissions()
        for tmp, target in zip(temps, targets, strict=True):
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"{exc.filename or targets[0]}: cannot write: {exc.strerror or exc}") from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block succeeds (removed if it fails)."""
    with staged_files([path]) as (tmp,):
        yield tmp


def write_file(path: str | Path, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` whole: a temporary file in the same folder, then a rename."""
    target = check_output_file(path)
    with staged_file(target) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return target
