#!/usr/bin/env python
"""Expected data-parallel throughput of the default model for 1-64 workers.

    python scripts/scaling_model.py --step-seconds 1.1 --audio-per-step 56

Inputs are measured numbers: the compute time of one training step on one worker (from
``speech-rnn bench``) and the audio seconds in that step's batch. Gradient bytes come from
the model's parameter count (float32). A ring all-reduce moves 2(N-1)/N of its bytes per
worker plus 2(N-1) latency hops. Our train step makes one all-reduce: the gradients, the
utterance count and a non-finite flag packed into one float32 vector, 4 x (parameters + 2)
bytes (speech_rnn/trainer.py, counted in tests/test_distributed.py). Before it made three:
the count (4 bytes), the gradients to check and clip them, and the gradients again inside
the Keras optimizer; the second table compares the two. Nothing overlaps the backward
pass, so the model is pessimistic by design.

Input (``--decode-rate``/``--store-rate``, measured by ``scripts/bench_store.py``): before the
feature store, every worker decodes and featurizes the whole global batch's audio and keeps
its share (AutoShardPolicy.DATA), so its input work per step grows with N; with the store it
reads only its own share (float16 log-mel, ``--store-mb-per-hour``), over the same network
link as the gradients when the store is on a shared file system. A step takes the longer of
compute + all-reduce and its input (prefetch overlaps them).
"""

import argparse


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--step-seconds",
        type=float,
        required=True,
        help="measured compute time of one training step on one worker",
    )
    p.add_argument(
        "--audio-per-step", type=float, required=True, help="audio seconds in one worker's batch"
    )
    p.add_argument(
        "--parameters",
        type=int,
        default=3_904_029,
        help="trainable parameters (default: the default model)",
    )
    p.add_argument("--latency-us", type=float, default=50.0, help="per-hop network latency")
    p.add_argument(
        "--decode-rate", type=float, help="one worker's on-the-fly input, audio-s per second"
    )
    p.add_argument("--store-rate", type=float, help="one worker's store read, audio-s per second")
    p.add_argument(
        "--store-mb-per-hour", type=float, default=28.0, help="float16 store bytes per audio hour"
    )
    args = p.parse_args()
    after, before = step_collectives(args.parameters)
    print(
        f"all-reduce: one of {after[0] / 1e6:.1f} MB per step (before: {len(before)}, "
        f"{sum(before) / 1e6:.1f} MB); compute {args.step_seconds * 1000:.0f} ms per step"
    )
    print(f"{'workers':>7} " + " ".join(f"{g:>4} Gb/s: audio-s/s  eff" for g in (10, 25, 100)))
    for n in (1, 2, 4, 8, 16, 32, 64):
        cells = []
        for gbps in (10, 25, 100):
            step = args.step_seconds + allreduce_seconds(after, n, gbps, args.latency_us)
            rate = n * args.audio_per_step / step
            cells.append(f"{rate:>10.0f} {args.step_seconds / step:>5.0%}")
        print(f"{n:>7} " + " ".join(f"{c:>22}" for c in cells))
    before_after_table(args, after, before)
    if args.decode_rate and args.store_rate:
        input_table(args, after)


def step_collectives(parameters: int):
    """Bytes of each all-reduce in one step: now (one packed float32 vector: gradients,
    count, flag) and before (the count, then the gradients twice)."""
    return [4 * (parameters + 2)], [4, 4 * parameters, 4 * parameters]


def allreduce_seconds(collectives, n: int, gbps: float, latency_us: float) -> float:
    """Ring all-reduce time per step on N workers: 2(N-1)/N of each collective's bytes
    over the link, and 2(N-1) latency hops for each collective."""
    if n == 1:
        return 0.0
    link = gbps * 1e9 / 8
    volume = sum(2 * (n - 1) / n * b for b in collectives)
    return volume / link + len(collectives) * 2 * (n - 1) * latency_us * 1e-6


def before_after_table(args, after, before):
    """The all-reduce time per step and the scaling efficiency, before and after packing."""
    print(
        f"\nall-reduce per step: before {len(before)} collectives ({sum(before):,} bytes), "
        f"after 1 ({after[0]:,} bytes)"
    )
    print(f"{'workers':>7} {'Gb/s':>5} {'before: ms/step':>16} {'eff':>5} "
          f"{'after: ms/step':>15} {'eff':>5}")  # fmt: skip
    for n in (16, 64):
        for gbps in (10, 25, 100):
            cells = []
            for collectives in (before, after):
                comm = allreduce_seconds(collectives, n, gbps, args.latency_us)
                eff = args.step_seconds / (args.step_seconds + comm)
                cells.append(f"{comm * 1000:>15.1f} {eff:>5.0%}")
            print(f"{n:>7} {gbps:>5} " + " ".join(cells))


def input_table(args, collectives):
    """Throughput with the input counted: before (every worker decodes the whole global
    batch) and after (each reads its share from the store over the network)."""
    print(
        f"\ninput: decode {args.decode_rate:.0f} audio-s/s per worker, store read "
        f"{args.store_rate:.0f} audio-s/s, {args.store_mb_per_hour:.1f} MB per audio hour"
    )
    print(f"{'workers':>7} {'Gb/s':>5} {'before: input s/step':>21} {'audio-s/s':>10} {'eff':>5}"
          f" {'after: input s/step':>20} {'audio-s/s':>10} {'eff':>5}")  # fmt: skip
    for n in (16, 64):
        for gbps in (10, 25, 100):
            link = gbps * 1e9 / 8
            comm = allreduce_seconds(collectives, n, gbps, args.latency_us)
            before_in = n * args.audio_per_step / args.decode_rate  # the whole global batch
            store_bytes = args.audio_per_step / 3600 * args.store_mb_per_hour * 1e6
            after_in = args.audio_per_step / args.store_rate + store_bytes / link
            ideal = n * args.audio_per_step / args.step_seconds
            cells = []
            for step_in, extra in ((before_in, 0.0), (after_in, store_bytes / link)):
                step = max(args.step_seconds + comm + extra, step_in)
                rate = n * args.audio_per_step / step
                cells.append(f"{step_in:>20.3f} {rate:>10.0f} {rate / ideal:>5.0%}")
            print(f"{n:>7} {gbps:>5} " + " ".join(cells))


if __name__ == "__main__":
    main()
