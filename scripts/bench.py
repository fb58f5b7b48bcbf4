#!/usr/bin/env python
"""Speed benchmarks: the same as ``speech-rnn bench ...`` (see ``--help``)."""

import sys

from speech_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
