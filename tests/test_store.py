"""Atomic stores, xarray-readable dims/coords, and the cached input checksums."""

import hashlib
import os

import numpy as np
import pytest
import xarray as xr

from genoattn.io.store import RowWriter, atomic_store, mark_coordinates, sha256_file


def test_checksum_is_cached_and_follows_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOATTN_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "x.bin"
    data = os.urandom(10_000)
    f.write_bytes(data)
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()  # from the cache
    data2 = os.urandom(10_001)
    f.write_bytes(data2)
    assert sha256_file(f) == hashlib.sha256(data2).hexdigest()


def test_a_failed_block_leaves_nothing_and_a_finished_one_opens_in_xarray(tmp_path):
    out = tmp_path / "s.zarr"
    with pytest.raises(RuntimeError):
        with atomic_store(out, attrs={"level": "t"}) as w:
            w.write("a", np.arange(3), ("x",))
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())
    rng = np.random.default_rng()
    emb = rng.normal(size=(1000, 4)).astype("float32")
    with atomic_store(out, attrs={"level": "t"}) as w:
        w.write("start", np.arange(1000) * 10, ("bin",))
        rw = RowWriter(w.create("embedding", (1000, 4), "float32", ("bin", "feature"), chunks=(64, 4)))
        for s in range(0, 1000, 37):
            rw.append(emb[s:s + 37])
        rw.close()
        mark_coordinates(w, "start")
    ds = xr.open_zarr(out)
    assert ds["embedding"].dims == ("bin", "feature") and "start" in ds.coords
    np.testing.assert_array_equal(ds["embedding"].values, emb)
    assert ds.attrs["level"] == "t" and "genoattn_version" in ds.attrs
