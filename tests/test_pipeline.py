"""The tf.data pipeline: true lengths, fixed padding, bucketing, seeded order, resume skip,
and weighted mixing of manifests."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile

from speech_rnn.config import Config
from speech_rnn.features import FeatureExtractor, FeatureStats, feature_dim
from speech_rnn.manifest import Utterance
from speech_rnn.pipeline import LABEL_PAD, bucket_boundaries, make_dataset
from speech_rnn.preflight import check_utterances
from speech_rnn.text import Vocabulary

tf = pytest.importorskip("tensorflow")
SR = 16000


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Twelve short noise clips of different lengths with short transcripts."""
    d = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    utterances = []
    for i in range(12):
        seconds = 0.3 + 0.25 * i
        path = d / f"clip{i}.wav"
        soundfile.write(path, 0.1 * rng.normal(size=int(seconds * SR)), SR)
        utterances.append(Utterance(str(path), seconds, "ab" * (i + 1), id=f"c{i}"))
    config = Config().with_overrides(["train.batch_size=4", "train.bucket_width_s=1.0"])
    vocab = Vocabulary(("a", "b"))
    result = check_utterances(utterances, vocab, config, decode_audio=True)
    assert len(result.examples) == 12, result.problems
    dim = feature_dim(config.features)
    extractor = FeatureExtractor(config.features, SR, FeatureStats((0.0,) * dim, (1.0,) * dim))
    return list(result.examples), config, extractor


def batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_batches_carry_true_lengths_and_fixed_padding(examples):
    examples, config, extractor = examples
    boundaries = bucket_boundaries(examples, config)
    out = batches(make_dataset(examples, config, extractor, training=False))
    seen = sorted(int(i) for b in out for i in b["index"])
    assert seen == list(range(12))
    label_widths = {b["labels"].shape[1] for b in out}
    assert label_widths == {32}  # longest label 24 -> 32
    for b in out:
        for row, index in enumerate(b["index"]):
            ex = examples[index]
            assert b["feature_lengths"][row] == ex.num_windows  # pre-flight arithmetic is exact
            assert b["label_lengths"][row] == len(ex.labels)
            np.testing.assert_array_equal(b["labels"][row, : len(ex.labels)], ex.labels)
            assert (b["labels"][row, len(ex.labels) :] == LABEL_PAD).all()
            assert not b["features"][row, ex.num_windows :].any()  # zero padding
        # Padded to its bucket's boundary (the bucket's longest length, boundary - 1), not to
        # the batch's longest: every example of a batch falls in one bucket, and the width
        # is that bucket's, so there are few distinct shapes.
        buckets = {int(np.searchsorted(boundaries, n, side="right")) for n in b["feature_lengths"]}
        assert len(buckets) == 1, b["feature_lengths"]
        assert b["features"].shape[1] == boundaries[buckets.pop()] - 1
    assert len({b["features"].shape[1] for b in out}) > 1  # several buckets


def test_training_order_is_seeded_per_epoch_and_resume_skips_exactly(examples):
    examples, config, extractor = examples

    def order(epoch, skip=0):
        return [
            list(b["index"])
            for b in batches(
                make_dataset(
                    examples, config, extractor, training=True, epoch=epoch, skip_batches=skip
                )
            )
        ]

    first = order(0)
    assert order(0) == first
    assert order(1) != first
    assert order(0, skip=2) == first[2:]


def test_augmentation_is_train_only_and_reproducible(examples):
    examples, config, extractor = examples
    a = batches(make_dataset(examples, config, extractor, training=True, epoch=0))
    b = batches(make_dataset(examples, config, extractor, training=True, epoch=0))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["features"], y["features"])
    plain = {
        int(i): f
        for batch in batches(make_dataset(examples, config, extractor, training=False))
        for i, f in zip(batch["index"], batch["features"])
    }
    changed = sum(
        not np.allclose(f, plain[int(i)][: len(f)])
        for batch in a
        for i, f in zip(batch["index"], batch["features"])
        if i >= 0  # -1: a copy that fills a bucket's last batch
    )
    assert changed > 6  # SpecAugment altered most training examples


def test_weighted_sources_are_drawn_in_proportion(examples):
    examples, config, extractor = examples
    sources = [(0, 6, 0.9), (6, 12, 0.1)]
    counts = np.zeros(2)
    for epoch in range(6):
        for b in batches(
            make_dataset(examples, config, extractor, training=True, epoch=epoch, sources=sources)
        ):
            counts[0] += ((b["index"] >= 0) & (b["index"] < 6)).sum()  # -1: a filling copy
            counts[1] += (b["index"] >= 6).sum()
    assert counts.sum() == 6 * 12  # an epoch is len(examples) draws
    assert 0.8 < counts[0] / counts.sum() < 0.97


def test_a_file_broken_after_the_preflight_check_is_left_out_counted_and_logged(
    examples, tmp_path, caplog
):
    """The README: training never feeds TensorFlow an unusable example. A file that passed
    the pre-flight check and is then overwritten is not fed (neither as empty audio nor as
    an error that ends the epoch): it is left out, its path collected and logged."""
    import dataclasses
    import shutil
    from pathlib import Path

    examples, config, extractor = examples
    utterances = []
    for example in examples[:4]:
        copy = tmp_path / Path(example.utterance.audio_filepath).name
        shutil.copy(example.utterance.audio_filepath, copy)
        utterances.append(dataclasses.replace(example.utterance, audio_filepath=str(copy)))
    checked = check_utterances(utterances, Vocabulary(("a", "b")), config, decode_audio=True)
    assert len(checked.examples) == 4, checked.problems
    broken = checked.examples[1].utterance.audio_filepath
    Path(broken).write_bytes(b"RIFF\x24\x00\x00\x00WAVE" + bytes(32))  # no longer audio
    # the project logger stops propagating once a command configured the console (another
    # test in this process may have): listen on it directly
    project_logger = logging.getLogger("speech_rnn")
    project_logger.addHandler(caplog.handler)
    for training in (True, False):
        skipped = []
        with caplog.at_level("WARNING", logger="speech_rnn"):
            out = batches(
                make_dataset(
                    list(checked.examples), config, extractor, training=training, skipped=skipped
                )
            )
        # in training, -1 marks the copies that fill a bucket's last batch
        assert sorted(int(i) for b in out for i in b["index"] if i >= 0) == [0, 2, 3]
        assert all((b["feature_lengths"] > 0).all() for b in out)
        assert skipped == [broken]
        assert f"{broken}" in caplog.text and "after the pre-flight check" in caplog.text
        caplog.clear()
    project_logger.removeHandler(caplog.handler)
