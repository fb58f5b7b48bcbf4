"""Offline synthetic speech: the espeak-ng engine, the sentence grammar, the corpus builder
(``speech-rnn synth``) and the demo that trains on it (``speech-rnn demo``). Tooling on top
of the recognizer: nothing in the core imports it."""
