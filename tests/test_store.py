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


def test_cleanup_leaves_the_temporary_of_a_live_writer(tmp_path):
    """A second writer of the same store (a CLI run beside a Snakemake job, a SLURM retry beside its first
    attempt) must not delete the temporary a live process is writing; a dead writer's is removed."""
    import subprocess
    import sys
    import time

    from genoattn.io.store import _host, remove_stale_temporaries

    out = tmp_path / "s.zarr"
    code = ("import sys, time, numpy as np\n"
            "from genoattn.io.store import atomic_store\n"
            "with atomic_store(sys.argv[1], attrs={'who': 'first'}) as w:\n"
            "    w.write('a', np.arange(5), ('x',))\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(4)\n"
            "    w.write('b', np.arange(5), ('x',))\n")
    first = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "writing"
    live = list(tmp_path.glob("s.zarr.tmp-*"))
    assert len(live) == 1 and f"-{first.pid}-" in live[0].name
    with atomic_store(out, attrs={"who": "second"}) as w:  # runs the cleanup first
        w.write("a", np.arange(5), ("x",))
    assert live[0].exists(), "the live writer's temporary was removed"
    assert first.wait(timeout=60) == 0, "the first writer failed"
    assert xr.open_zarr(out).attrs["who"] == "first" and "b" in xr.open_zarr(out)
    # a temporary of a process that has exited, on this host: removed; of another host: kept while recent
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"s.zarr.tmp-{_host()}-{done.stdout.strip()}-deadbeef"
    other = tmp_path / "s.zarr.tmp-othernode-12345-cafecafe"
    old = tmp_path / "s.zarr.tmp-othernode-12346-0badf00d"
    for p in (dead, other, old):
        p.mkdir()
        (p / "zarr.json").write_text("{}")
    long_ago = time.time() - 3 * 24 * 3600
    for p in (old, old / "zarr.json"):
        os.utime(p, (long_ago, long_ago))
    remove_stale_temporaries(out)
    assert not dead.exists() and other.exists() and not old.exists()
