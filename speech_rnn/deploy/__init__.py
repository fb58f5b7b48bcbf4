"""Deployment, on top of the recognizer: ``speech-rnn export`` writes a trained run as a
self-contained SavedModel and LiteRT (TFLite) files (:mod:`.export`, :mod:`.graph`), and
``speech-rnn serve`` serves a run over HTTP with dynamic batching and a web page
(:mod:`.server`). ``docs/deploy.md`` documents both. Core modules never import this package."""
