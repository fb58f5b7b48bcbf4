"""Every private Keras / TensorFlow API the package relies on, in one place.

Each has a reason and the versions it was checked against (TensorFlow 2.21.0, Keras 3.15.1;
the test suite exercises all of them). When upgrading, start here.

* :func:`rnn_loop`: ``keras.src.backend.rnn``, the backend's masked time loop, which Keras'
  own LSTM uses and ``keras.ops`` does not expose. :class:`speech_rnn.model.ProjectedLSTM`
  runs its hoisted-projection step function in it (and overrides ``LSTM.inner_loop``, an
  undocumented method, to do so), so that masking, direction and XLA behave exactly as in
  Keras' LSTM.
* :func:`op_determinism_enabled` / :func:`disable_op_determinism`: TensorFlow has a public
  switch to turn op determinism on but none to query or undo it; training turns it off
  again on the way out so it does not leak into later runs in the same process.
* :class:`BuiltBeforeFit`: overrides ``keras.Model._maybe_symbolic_build``. Keras builds a
  model from a first batch it averages across replicas; on a multi-worker strategy that
  fails for dict batches. Training builds the model and optimizer before ``fit``.
"""

from __future__ import annotations


def rnn_loop(step, inputs, initial_states, **kwargs):
    """``keras.src.backend.rnn(step, inputs, initial_states, **kwargs)``."""
    from keras.src import backend

    return backend.rnn(step, inputs, initial_states, **kwargs)


def op_determinism_enabled() -> bool:
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


def disable_op_determinism() -> None:
    from tensorflow.python.framework import config

    config.disable_op_determinism()


class BuiltBeforeFit:
    """Mixin for a ``keras.Model`` whose weights and optimizer are built before ``fit``:
    Keras' symbolic build from a first batch is skipped, as Keras does without a strategy.
    (A mixin, so that importing this module does not start TensorFlow.)"""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
