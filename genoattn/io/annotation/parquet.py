"""The annotation table on disk: atomic Parquet write, read, and key/value metadata."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from genoattn.io.annotation.schema import COLUMNS, META_KEY, _arrow_schema


def write_annotation(df: pd.DataFrame, path: str | os.PathLike, meta: Mapping) -> None:
    """Write the table atomically (temporary file beside ``path``, then ``os.replace``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from genoattn import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".tmp-*"):
        stale.unlink(missing_ok=True)
    table = pa.Table.from_pandas(df[list(COLUMNS)], schema=_arrow_schema(), preserve_index=False)
    kv = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    kv["genoattn_version"] = __version__
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in kv.items()}})
    tmp = path.parent / f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_annotation_metadata(path: str | os.PathLike) -> dict:
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    out = {}
    for k, v in raw.items():
        k, v = k.decode(), v.decode()
        if k == "pandas":
            continue
        if k == META_KEY:
            v = json.loads(v)
        out[k] = v
    return out


def read_annotation(path: str | os.PathLike, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The annotation table as a DataFrame (contract columns; ``df.attrs`` holds the metadata)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    df = table.to_pandas()
    if "phase" in df:
        df["phase"] = df["phase"].astype(np.int8)
    df.attrs.update(read_annotation_metadata(path))
    return df
