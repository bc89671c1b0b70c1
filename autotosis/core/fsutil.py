"""Atomic output files: write to a temp file beside the target, then rename.

A crash or Ctrl-C never leaves a truncated file under the final name, and nothing a
user owns is replaced unless ``force`` is set.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from autotosis.core.errors import FileSystemError, OutputExistsError


def cache_root() -> Path:
    """Where autotosis keeps what it can make again (scores, model exports): $AUTOTOSIS_CACHE, else the
    user's cache folder."""
    base = os.environ.get("AUTOTOSIS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "autotosis"
    )
    return Path(base)


def check_writable(path: Path, force: bool) -> None:
    """Raise OutputExistsError if ``path`` exists and ``force`` is false."""
    if path.exists() and not force:
        raise OutputExistsError(path)


@contextlib.contextmanager
def atomic_path(path: Path | str, force: bool = False) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto ``path`` on success.

    The temp name keeps the target's suffix so tools that pick a format from the
    extension (ffmpeg, numpy) still do the right thing.
    """
    path = Path(path)
    check_writable(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".part{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); a finished output gets the mode any new
        # file of the user's would get.
        os.chmod(tmp, 0o666 & ~_umask())
        # Re-check: another process may have created the file meanwhile.
        check_writable(path, force)
        if force:
            os.replace(tmp, path)
        else:
            _rename_new(tmp, path)
    except OSError as exc:  # disk full, file size limit, permissions: one clear line, and no partial file
        raise write_error(path, exc, temp=tmp) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: Path | str, force: bool = False) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it takes the name ``path``.

    What had the name (only with ``force``) is moved aside first and deleted after, so the
    name always holds either the old folder or the complete new one; on an error or Ctrl-C
    the new folder is removed and the old one left as it was.  The temp names are hidden
    ``.NAME.RANDOM.part`` folders (``.NAME.RANDOM.old.part`` for the one moved aside).
    """
    import shutil

    path = Path(path)
    check_writable(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:40]}.", suffix=".part", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private
    except OSError as exc:
        raise write_error(path, exc) from exc
    old: Path | None = None
    try:
        yield tmp
        check_writable(path, force)  # another process may have made it meanwhile
        try:
            if os.path.lexists(path):
                aside = Path(tempfile.mkdtemp(prefix=f".{path.name[:40]}.", suffix=".old.part", dir=path.parent))
                aside.rmdir()  # only its unique name is wanted (a file at ``path`` cannot replace a folder)
                os.rename(path, aside)
                old = aside
            os.rename(tmp, path)
        except OSError as exc:
            if old is not None and not os.path.lexists(path):
                with contextlib.suppress(OSError):
                    os.rename(old, path)  # put the old one back
                    old = None
            raise write_error(path, exc, temp=tmp) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    old.unlink()


def _rename_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only while nothing has that name: of two runs finishing the same new
    output at once, one wins and the other gets OutputExistsError (a link fails where a name exists)."""
    try:
        os.link(tmp, path)  # tmp itself is removed by the caller
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
            raise
        os.replace(tmp, path)  # a file system without hard links: the re-check above is all there is


_WRITE_HINTS = {
    errno.ENOSPC: "free some disk space, or write somewhere else",
    errno.EDQUOT: "your disk quota is used up; free some space, or write somewhere else",
    errno.EFBIG: "the file size limit (ulimit -f) or the file system's largest file was reached",
    errno.EACCES: "check the folder's permissions, or write somewhere else",
    errno.EPERM: "check the folder's permissions, or write somewhere else",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.EEXIST: "a file is where a folder of the path should be; write somewhere else",
    errno.ENOTDIR: "a file is where a folder of the path should be; write somewhere else",
}


def write_error(target: Path, exc: OSError, temp: Path | None = None) -> FileSystemError:
    """A one-line error for an OSError met while writing ``target`` (its temp file counts as the target)."""
    named = Path(exc.filename) if isinstance(exc.filename, (str, os.PathLike)) else None
    where = target if named is None or named == temp else named
    return FileSystemError(f"{where}: cannot write: {exc.strerror or exc}", hint=_WRITE_HINTS.get(exc.errno or 0))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path | str, text: str, force: bool = False) -> None:
    with atomic_path(path, force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: Path | str, data: bytes, force: bool = False) -> None:
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)


def file_fingerprint(path: Path | str, block: int = 1 << 16) -> str:
    """Cheap identity of a (possibly huge) file: size, mtime and hashes of a few blocks.

    Reads at most five 64 KiB blocks (start, quarters, end), so fingerprinting a 10 GB
    VOD is instant yet a re-encoded or replaced file gets a new identity.
    """
    import hashlib

    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
            handle.seek(max(0, min(int(stat.st_size * fraction), stat.st_size - block)))
            digest.update(handle.read(block))
    return digest.hexdigest()[:20]


_UNSAFE_IN_NAMES = re.compile(r"[^\w.-]+")


def safe_stem(path: Path | str) -> str:
    """A file's stem fit for new file names: runs of anything but letters, digits, ``_ . -`` become ``-``."""
    return _UNSAFE_IN_NAMES.sub("-", Path(path).stem).strip("-.") or "video"


_OWNER_FILE = ".owner-pid"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, somebody else's
        return True
    return True


def _sweep_orphaned_work_dirs(prefix: str) -> None:
    """Remove work folders of ``prefix`` whose process is gone (killed with -9, a power cut)."""
    import shutil

    base = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for folder in base.glob(f"{prefix}*"):
            try:
                pid = int((folder / _OWNER_FILE).read_text(encoding="ascii"))
            except (OSError, ValueError):
                continue  # not ours, or still being set up
            if not _process_alive(pid):
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A private temporary folder, removed afterwards; folders of killed earlier runs are removed first."""
    import shutil

    _sweep_orphaned_work_dirs(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (folder / _OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
