"""Backtest predictions kept on disk, so a second backtest of an unchanged store reads them instead of refitting.

An entry is one method's expected counts at one origin. Its key is a digest of
everything the prediction depends on: the store (:func:`store_digest`, which changes
whenever the store is ingested again), the unit set and the builder's groups, the
method and its parameters (:func:`method_key`), the origin, horizon and training
design, and the code that made it (:func:`code_version`, a digest of the source of
the packages a prediction is computed by). Change any of them and the entry is
simply never asked for again; old entries age out.

The cache lives where the caller says (the service puts it in the store's own
``cache/predictions`` folder, never in the repository), is bounded (the least
recently used entries go once it holds more than ``max_mb``) and can be emptied at
any time (:meth:`PredictionCache.clear`): it is only ever a shortcut. An entry is
trusted only when it reads whole and its checksum and recorded key match; anything
else is deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

CACHE_FORMAT = 1
"""Layout of an entry; a new layout makes every old entry a miss."""
CODE_PACKAGES = ("geo", "sources", "features", "models")
"""Packages whose source a prediction depends on (:func:`code_version`)."""
UNKEYED_PARAMS = ("n_jobs", "verbose", "verbosity")
"""Estimator parameters that change how a fit runs, not what it predicts."""


def store_digest(store) -> str:
    """A digest of the store's ingest report: it records every input file's hash, the tables and when the
    store was made, so it changes whenever the store is ingested again."""
    return hashlib.sha256((Path(store.root) / "ingest_report.json").read_bytes()).hexdigest()[:20]


@cache
def code_version() -> str:
    """A digest of the Python source of :data:`CODE_PACKAGES` (computed once per process, on first use)."""
    h = hashlib.sha256(f"format {CACHE_FORMAT}".encode())

    def walk(node, prefix):
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and child.name != "__pycache__":
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".py"):
                h.update(f"{prefix}{child.name}\0".encode())
                h.update(child.read_bytes())

    for package in CODE_PACKAGES:
        walk(files(package), f"{package}/")
    return h.hexdigest()[:20]


def method_key(method) -> str:
    """The class and parameters of a method, as text: equal for two methods that predict alike.

    Estimators give :meth:`get_params`; other methods (:class:`~models.baselines.PanelMean`,
    :class:`~models.baselines.KernelBaseline`) their public attributes, learned ones (ending
    in ``_``) left out.

    Examples
    --------
    >>> from models.baselines import ColumnRanker
    >>> method_key(ColumnRanker("cnt_sv_12m")) == method_key(ColumnRanker("cnt_sv_12m"))
    True
    >>> method_key(ColumnRanker("cnt_sv_12m")) == method_key(ColumnRanker("cnt_sv_1m"))
    False
    """
    if hasattr(method, "get_params"):
        params = method.get_params(deep=False)
    else:
        params = {k: v for k, v in vars(method).items() if not k.startswith("_") and not k.endswith("_")}
    shown = ", ".join(f"{k}={method_key(v) if hasattr(v, 'get_params') else repr(v)}"
                      for k, v in sorted(params.items()) if k not in UNKEYED_PARAMS)
    return f"{type(method).__module__}.{type(method).__qualname__}({shown})"


def _touch(path: Path) -> None:
    """Mark an entry used now, to the nanosecond (file times can be coarser): the bound deletes the oldest."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


class PredictionCache:
    """Per-origin predictions on disk, one file per entry (see the module notes).

    Parameters
    ----------
    root : path
        The cache folder (made on first write).
    store : str
        :func:`store_digest` of the store the predictions are made from.
    max_mb : float
        Size the folder is kept under; the least recently read or written entries go first.

    Attributes
    ----------
    hits, misses, rejected : int
        Entries read, entries not there, and entries found damaged (deleted, then recomputed).
    """

    def __init__(self, root, store: str, max_mb: float = 256.0):
        if max_mb <= 0:
            raise ValueError(f"PredictionCache: max_mb must be > 0, got {max_mb!r}")
        self.root = Path(root)
        self.store = str(store)
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.hits = self.misses = self.rejected = 0
        self._bytes: int | None = None  # the folder's size, scanned on the first write

    @classmethod
    def for_store(cls, store, max_mb: float = 256.0) -> PredictionCache:
        """The cache in ``<store>/cache/predictions``, keyed by the store's digest."""
        return cls(Path(store.root) / "cache" / "predictions", store_digest(store), max_mb)

    def key(self, **parts) -> dict:
        """The full key of an entry: ``parts`` (units, method, origin, ...) with the store and code version."""
        return {"format": CACHE_FORMAT, "store": self.store, "code": code_version(),
                **{k: v if isinstance(v, (int, float, bool)) or v is None else str(v) for k, v in parts.items()}}

    def _path(self, key: dict) -> Path:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.root / f"{name}.npz"

    @staticmethod
    def _checksum(ids: np.ndarray, values: np.ndarray, meta: str) -> str:
        h = hashlib.sha256(meta.encode())
        h.update("\0".join(ids.tolist()).encode())
        h.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        return h.hexdigest()

    def get(self, key: dict) -> tuple[pd.Series, dict] | None:
        """(predictions by unit_id, the extra facts stored with them), or None when absent or not trusted."""
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, values = z["ids"], z["values"]
                meta, checksum = str(z["meta"]), str(z["checksum"])
            doc = json.loads(meta)
            if checksum != self._checksum(ids, values, meta) or doc.get("key") != json.loads(json.dumps(key)):
                raise ValueError("checksum or key mismatch")
            if values.dtype != np.float64 or values.shape != ids.shape:
                raise ValueError("bad arrays")
        except Exception:  # noqa: BLE001 - any damage means the entry is not trusted: it is removed and remade
            self.rejected += 1
            path.unlink(missing_ok=True)
            return None
        _touch(path)  # recently used: kept longest
        self.hits += 1
        return pd.Series(values, index=pd.Index(ids.astype(object), name="unit_id")), doc.get("extra", {})

    def put(self, key: dict, predictions: pd.Series, extra: dict | None = None) -> None:
        """Write one entry (atomically: a reader sees the old file or the whole new one), then keep the bound."""
        ids = np.asarray(predictions.index.astype(str), dtype=str)
        values = predictions.to_numpy(dtype=np.float64)
        meta = json.dumps({"key": key, "extra": extra or {}}, sort_keys=True)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, ids=ids, values=values, meta=np.array(meta),
                         checksum=np.array(self._checksum(ids, values, meta)))
            path = self._path(key)
            old = path.stat().st_size if path.is_file() else 0
            os.replace(tmp, path)
            _touch(path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        if self._bytes is None:
            self.prune()
        else:
            self._bytes += path.stat().st_size - old
            if self._bytes > self.max_bytes:
                self.prune()

    def prune(self) -> None:
        """Delete the least recently used entries until the folder holds at most ``max_mb``."""
        entries = []
        for p in self.root.glob("*.npz"):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.max_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size
        self._bytes = total

    def clear(self) -> int:
        """Delete every entry; the number deleted."""
        n = 0
        for p in [*self.root.glob("*.npz"), *self.root.glob("*.tmp")]:
            p.unlink(missing_ok=True)
            n += 1
        self._bytes = 0
        return n

    def __repr__(self) -> str:
        return f"PredictionCache({str(self.root)!r}, store={self.store!r}, max_mb={self.max_bytes / 2**20:g})"
