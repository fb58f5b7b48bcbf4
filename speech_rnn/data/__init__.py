"""Corpus preparation: importers for common layouts (``speech-rnn prepare``) and ready-made
recipes over the shared speech data (``speech-rnn recipe``). Tooling on top of the
recognizer: nothing in the core imports it."""
