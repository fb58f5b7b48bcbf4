#!/usr/bin/env python
"""Import a corpus into manifests: the same as ``speech-rnn prepare ...``."""

import sys

from speech_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", *sys.argv[1:]]))
