"""Deployment: serving a trained model over HTTP (``speech-rnn serve``)."""
