"""Where things are by default: the shared speech data beside the project."""

from __future__ import annotations

import os
from pathlib import Path


def default_shared_data() -> Path | None:
    """``../shared/data`` beside the project (or $SPEECH_RNN_SHARED_DATA), if present."""
    env = os.environ.get("SPEECH_RNN_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None
