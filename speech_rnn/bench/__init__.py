"""The benchmark suite (``speech-rnn bench``): speed and memory, side by side, in worker
processes. Tooling on top of the recognizer: nothing in the core imports it."""
