"""Where dataset files live, how they are fetched, and how every local copy is checked.

A dataset's files sit in one folder under the data root: ``--data-dir``, else
``$BIOBENCH_DATA``, else the user's cache directory. A missing file is downloaded
with pooch from its published addresses and checked against its published MD5;
a file that is already there is checked too (by the reader of its format), so a
truncated, corrupt or substituted file is an error, never data.

Offline, the first file that cannot be fetched raises one :class:`DataError`
whose text starts with the hint (which files to put in which folder), followed by
every download error on a line of its own, each error whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "BIOBENCH_DATA"


class DataError(RuntimeError):
    """The data files are missing, unreachable, truncated or corrupt."""


def default_data_root() -> Path:
    """``$BIOBENCH_DATA`` if set, else the user's cache directory for biobench."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("biobench"))


def data_folder(root: str | os.PathLike | None, *parts: str) -> Path:
    """``<root>/<parts...>``, the root defaulting to :func:`default_data_root`."""
    base = Path(root).expanduser() if root else default_data_root()
    return base.joinpath(*parts)


def md5_hex(payload: bytes) -> str:
    """The MD5 of ``payload`` as 32 hex digits."""
    return hashlib.md5(payload, usedforsecurity=False).hexdigest()


def file_md5(path: Path, chunk: int = 1 << 22) -> str:
    """The MD5 of a file's bytes, read in chunks (large archives never sit in memory whole)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path, actual: str, expected: str, what: str = "") -> None:
    """Raise :class:`DataError` unless ``actual`` is the published ``expected`` MD5 of ``path``."""
    if actual != expected:
        raise DataError(
            f"{path}: {what or 'its content'} has MD5 {actual}, not the published {expected}; the file is "
            "corrupt or another dataset: delete it so it can be fetched again"
        )


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name on disk, its published MD5 and the addresses it is served from."""

    name: str
    md5: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class DataSource:
    """A dataset's published files and the folder (below the data root) that holds them.

    ``hint_files`` names what a user may put there instead (e.g. the files an archive
    unpacks to); by default the published files themselves.
    """

    title: str
    subfolder: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    hint_files: tuple[str, ...] = ()

    def folder(self, root: str | os.PathLike | None) -> Path:
        """The folder holding this dataset's files under ``root``."""
        return data_folder(root, *self.subfolder)

    def hint(self, folder: Path, downloading: bool = True) -> str:
        """Where to put which files: the first words of every error about missing files."""
        names = self.hint_files or tuple(f.name for f in self.files)
        layout = "/".join(self.subfolder)
        why = "could not be downloaded" if downloading else "downloading is off (task option download=false)"
        return (
            f"{self.title} is not in {folder} and {why}. Put {', '.join(names)} in {folder}, "
            f"or point --data-dir / ${DATA_ENV} at a folder that holds {layout}/ with them."
        )

    def fetch(self, folder: Path, remote: RemoteFile) -> Path:
        """Download ``remote`` into ``folder`` (its MD5 verified by pooch), trying each address in turn.

        Raises :class:`DataError`: the hint first, then one line per failed address. Folders
        created for the download are removed again when nothing could be downloaded.
        """
        import pooch

        pooch.get_logger().setLevel("WARNING")  # its "Downloading ..." line would precede our own message
        created = [p for p in (folder, *folder.parents) if not p.exists()]
        errors = []
        for url in remote.urls:
            try:
                fetched = pooch.retrieve(
                    url=url, known_hash=f"md5:{remote.md5}", fname=remote.name, path=folder, progressbar=False
                )
                return Path(fetched)
            except Exception as exc:  # network errors, hash mismatch
                errors.append(download_error(url, exc))
        for empty in created:  # innermost first
            with contextlib.suppress(OSError):
                empty.rmdir()
        raise DataError(self.hint(folder) + "\nDownload errors:\n" + "\n".join(f"  {e}" for e in errors))


def download_error(url: str, exc: BaseException) -> str:
    """One line naming the address and the error (the error's first line, never shortened)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{url}: {type(exc).__name__}: {first}".rstrip(": ")


def find_local(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that is a file in ``folder``, or None."""
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None
