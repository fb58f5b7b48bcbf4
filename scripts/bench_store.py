#!/usr/bin/env python
"""Feature store at scale (see speech_rnn/bench/store.py)."""

import sys

from speech_rnn.bench.store import main

if __name__ == "__main__":
    sys.exit(main())
