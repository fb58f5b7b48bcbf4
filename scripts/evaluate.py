#!/usr/bin/env python
"""Score a trained run: the same as ``speech-rnn evaluate ...``."""

import sys

from speech_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
