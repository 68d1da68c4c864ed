"""zarr (format 3) stores that xarray opens, written atomically.

Contract (DESIGN.md "Stores", "Atomicity")
------------------------------------------
* A store is a zarr v3 group. Every array carries ``dimension_names``; a data variable lists
  the non-index coordinate arrays it shares a dimension with in its ``coordinates``
  attribute, so ``xarray.open_zarr(path[, group=...])`` gives named dims and coords.
* Root attributes: ``genoattn_version``, ``level``, ``model`` (weights identity), ``config``
  (the values that shaped the data), ``inputs`` (path -> sha256 of the raw input files).
* :func:`atomic_store` writes under ``{final}.tmp-{host}-{pid}-{uuid}`` beside the final path and
  renames into place only when the block finished without error; on error the temporary
  directory is removed. A killed job leaves only a ``.tmp-`` directory, which nothing reads
  and the next run of the same job removes, unless its writer may still be running: a process
  of this host that is alive, or a writer on another host (a cluster node) that wrote into it
  within ``GENOATTN_STALE_TMP_HOURS`` (default 24) hours. Such a temporary is left alone (and
  logged), so a CLI run beside a Snakemake job, or a SLURM retry beside its first attempt,
  never pulls the store from under a live writer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from genoattn import __version__

TMP_MARK = ".tmp-"
log = logging.getLogger(__name__)


def _zarr():
    import zarr  # heavy import kept lazy for the CLI's --help
    return zarr


def _checksum_cache_dir() -> Path:
    base = os.environ.get("GENOATTN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genoattn")
    return Path(base) / "sha256"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file, cached by (real path, size, mtime) so that the many jobs reading one large
    input (a human .mcool, a biobank VCF) hash it once. The cache lives in $GENOATTN_CACHE_DIR
    (default ~/.cache/genoattn); a changed file has a new size or mtime and is hashed again."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = hashlib.sha256(real.encode()).hexdigest()[:32]
    cache = _checksum_cache_dir() / f"{key}.json"
    try:
        entry = json.loads(cache.read_text())
        if entry["size"] == st.st_size and entry["mtime_ns"] == st.st_mtime_ns and entry["path"] == real:
            return entry["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with open(real, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    digest = h.hexdigest()
    try:  # best effort: a read-only home directory only costs the re-hash
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))
        os.replace(tmp, cache)
    except OSError:
        pass
    return digest


def input_checksums(paths: Iterable[str | os.PathLike | None]) -> dict[str, str]:
    """sha256 of each existing raw input file (directories, e.g. zarr stores, are skipped)."""
    out = {}
    for p in paths:
        if p and os.path.isfile(p):
            out[str(p)] = sha256_file(p)
    return out


def upstream_inputs(stores: Iterable[str | os.PathLike | None]) -> dict[str, str]:
    """The raw input files (path -> sha256) the given stores record in their ``inputs`` attribute: provenance
    carried up a level (a store made from other stores names the raw files they were made from)."""
    out: dict[str, str] = {}
    for path in stores:
        if path and os.path.isdir(path):
            out.update(read_attrs(path).get("inputs", {}))
    return out


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _last_write(path: Path) -> float:
    newest = path.stat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                pass
    return newest


def writer_may_be_alive(tmp: Path) -> bool:
    """Whether the writer of the temporary store ``tmp`` may still be running (see the module docstring)."""
    tag = tmp.name.rsplit(TMP_MARK, 1)[-1].split("-")
    host, pid = (tag[0], tag[1]) if len(tag) >= 3 else (_host(), tag[0])  # old names: {pid}-{uuid}
    if host == _host():
        return pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid))
    hours = float(os.environ.get("GENOATTN_STALE_TMP_HOURS", 24))
    try:
        return time.time() - _last_write(tmp) < hours * 3600
    except OSError:
        return False


def remove_stale_temporaries(final: str | os.PathLike) -> None:
    """Remove the temporaries of earlier, dead writers of ``final``; leave those of live ones."""
    final = Path(final)
    if final.parent.is_dir():
        for p in final.parent.glob(final.name + TMP_MARK + "*"):
            if writer_may_be_alive(p):
                log.warning("%s: left in place, its writer may still be running (pid alive on this host, or written "
                            "on another host within GENOATTN_STALE_TMP_HOURS); remove it by hand if it is not", p)
                continue
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def atomic_store(final: str | os.PathLike, attrs: dict[str, Any] | None = None) -> Iterator["StoreWriter"]:
    """Open a :class:`StoreWriter` on a temporary path; rename to ``final`` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.parent / f"{final.name}{TMP_MARK}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    writer = StoreWriter(tmp, attrs=attrs)
    try:
        yield writer
        writer.finalize()
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            # zarr's write errors name no file: name the store (its temporary is removed)
            raise OSError(exc.errno, f"{os.strerror(exc.errno)} while writing the store", str(final)) from None
        raise


def _jsonable(obj: Any) -> Any:
    """Attributes must be JSON: numpy scalars/arrays and paths converted."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") and np.ndim(o) == 0
                                 else (o.tolist() if hasattr(o, "tolist") else str(o))))


class StoreWriter:
    """Build a zarr v3 group (and sub-groups) with xarray-readable dimension names."""

    def __init__(self, path: str | os.PathLike, attrs: dict[str, Any] | None = None, _root=None, _group=""):
        zarr = _zarr()
        self.path = Path(path)
        self._root = _root if _root is not None else self
        self._prefix = _group
        if _root is None:
            self.group = zarr.open_group(str(self.path), mode="w", zarr_format=3)
            base = {"genoattn_version": __version__}
            base.update(attrs or {})
            self.group.attrs.update(_jsonable(base))
            self._vars: dict[str, dict[str, tuple[str, ...]]] = {}
        else:
            self.group = _root.group.require_group(_group) if _group else _root.group
            self.group.attrs.update(_jsonable(attrs or {}))
        self._root._vars.setdefault(_group, {})

    # -- creation ---------------------------------------------------------------------------
    def subgroup(self, name: str, attrs: dict[str, Any] | None = None) -> "StoreWriter":
        full = f"{self._prefix}/{name}" if self._prefix else name
        return StoreWriter(self.path, attrs=attrs, _root=self._root, _group=full)

    def create(self, name: str, shape: Sequence[int], dtype, dims: Sequence[str], chunks=None,
               fill_value=0, attrs: dict[str, Any] | None = None):
        """Create an empty array to fill in slices (streaming writes)."""
        if len(dims) != len(shape):
            raise ValueError(f"{name}: {len(dims)} dims for shape {tuple(shape)}")
        if chunks is None:
            chunks = _default_chunks(shape, np.dtype(dtype))
        chunks = tuple(max(1, min(int(c), int(s))) if s else 1 for c, s in zip(chunks, shape))
        arr = self.group.create_array(name, shape=tuple(int(s) for s in shape), dtype=dtype, chunks=chunks,
                                      fill_value=fill_value, dimension_names=tuple(dims))
        if attrs:
            arr.attrs.update(_jsonable(attrs))
        self._root._vars[self._prefix][name] = tuple(dims)
        return arr

    def write(self, name: str, data, dims: Sequence[str], chunks=None, attrs: dict[str, Any] | None = None):
        """Create and fill an array in one go (data that fits in memory)."""
        data = np.asarray(data)
        if data.dtype.kind in "OU":
            data = data.astype(str).astype(object)
            arr = self.group.create_array(name, shape=data.shape, dtype=str,
                                          chunks=chunks or (data.shape if data.size else (1,) * data.ndim),
                                          dimension_names=tuple(dims))
            if attrs:
                arr.attrs.update(_jsonable(attrs))
            self._root._vars[self._prefix][name] = tuple(dims)
        else:
            arr = self.create(name, data.shape, data.dtype, dims, chunks=chunks, attrs=attrs)
        if data.size:
            arr[...] = data
        return arr

    # -- finishing --------------------------------------------------------------------------
    def finalize(self) -> None:
        """Tag data variables with their coordinates, then consolidate metadata."""
        if self._root is not self:
            return
        zarr = _zarr()
        for prefix, variables in self._vars.items():
            group = self.group[prefix] if prefix else self.group
            coord_names = set(group.attrs.get("coordinate_variables", []))
            for name, dims in variables.items():
                if name in coord_names or (len(dims) == 1 and dims[0] == name):
                    continue
                coords = [c for c in coord_names if c != name and set(variables.get(c, ())) <= set(dims)
                          and variables.get(c)]
                if coords:
                    group[name].attrs["coordinates"] = " ".join(sorted(coords))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(self.path))


def mark_coordinates(writer: StoreWriter, *names: str) -> None:
    """Declare non-index coordinate variables of a group (e.g. ``window_start`` along ``window``)."""
    existing = list(writer.group.attrs.get("coordinate_variables", []))
    writer.group.attrs["coordinate_variables"] = sorted(set(existing) | set(names))


def _default_chunks(shape: Sequence[int], dtype: np.dtype) -> tuple[int, ...]:
    """~4 MiB chunks along the first axis, whole trailing axes."""
    if not shape:
        return ()
    row = int(np.prod(shape[1:])) * dtype.itemsize if len(shape) > 1 else dtype.itemsize
    rows = max(1, (4 << 20) // max(row, 1))
    return (min(int(shape[0]) or 1, rows),) + tuple(int(s) or 1 for s in shape[1:])


def open_group(path: str | os.PathLike, group: str | None = None):
    """Open a finished store read-only (zarr group)."""
    zarr = _zarr()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"store {path} does not exist; run the rule that writes it first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = zarr.open_group(str(path), mode="r", zarr_format=3)
    return root[group] if group else root


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    return dict(open_group(path).attrs)


class RowWriter:
    """Append rows to a pre-sized array along axis 0, writing whole chunks only.

    Streaming producers (windows, exon bases, variants) emit rows in order; buffering up to one
    chunk avoids rewriting (and recompressing) a chunk once per batch.
    """

    def __init__(self, array):
        self.array = array
        self.rows = int(array.chunks[0])
        self.pos = 0
        self._buf: list[np.ndarray] = []
        self._n = 0

    def append(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        self._buf.append(np.asarray(rows))
        self._n += len(rows)
        if self._n >= self.rows:
            self._flush(whole_chunks_only=True)

    def _flush(self, whole_chunks_only: bool) -> None:
        if not self._buf:
            return
        data = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        n = (len(data) // self.rows) * self.rows if whole_chunks_only else len(data)
        if n:
            self.array[self.pos:self.pos + n] = data[:n].astype(self.array.dtype, copy=False)
            self.pos += n
        rest = data[n:]
        self._buf = [rest] if len(rest) else []
        self._n = len(rest)

    def close(self) -> None:
        self._flush(whole_chunks_only=False)
        if self.pos != self.array.shape[0]:
            raise RuntimeError(f"wrote {self.pos} rows into an array of {self.array.shape[0]}")
