#!/usr/bin/env python
"""Transcribe audio files: the same as ``speech-rnn transcribe ...`` (see ``--help``)."""

import sys

from speech_rnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["transcribe", *sys.argv[1:]]))
