"""Small file helpers: atomic writes, so that no reader ever sees half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import OutputError


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over.

    On any error (a full disk included) the temporary file is removed and ``path`` keeps its
    previous content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_output_dir(path, what: str = "output folder") -> Path:
    """Create ``path`` (and its parents) and check a file can be written in it, so that an
    unusable output folder is one :class:`OutputError` before any work starts, not a
    traceback after it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: the {what} is an existing file, not a folder")
    probe = path / f".write_test.{os.getpid()}.tmp"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"ok")
        probe.unlink()
    except OSError as e:
        raise OutputError(
            f"{path}: cannot create or write the {what} ({e.strerror or type(e).__name__})"
        ) from None
    return path


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def recorded_settings_differ(out_dir, marker: str, settings: dict, absent=None) -> list:
    """For resumable builds: record ``settings`` in ``out_dir/marker`` the first time, and
    afterwards return the keys whose recorded value differs (empty: built the same way).
    ``absent``: the value a key had in folders recorded before it existed."""
    out_dir = Path(out_dir)
    path = out_dir / marker
    if not path.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, settings)
        return []
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    absent = absent or {}
    return sorted(
        k for k in settings if not isinstance(old, dict) or old.get(k, absent.get(k)) != settings[k]
    )
