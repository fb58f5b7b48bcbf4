"""Deployment: ``speech-rnn export`` writes a trained run as a self-contained SavedModel
and LiteRT (TFLite) files (:mod:`speech_rnn.deploy.export`); ``docs/deploy.md`` says how to
serve and call them. Core modules never import this package."""
