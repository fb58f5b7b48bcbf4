#!/usr/bin/env python
"""Train a model: the same as ``speech-rnn train ...`` (see ``--help``)."""

import sys

from speech_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
