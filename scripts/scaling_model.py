#!/usr/bin/env python
"""Expected data-parallel throughput of the default model for 1-64 workers.

    python scripts/scaling_model.py --step-seconds 1.1 --audio-per-step 56

Inputs are measured numbers: the compute time of one training step on one worker (from
``speech-rnn bench``) and the audio seconds in that step's batch. Gradient bytes come from
the model's parameter count (float32). A ring all-reduce moves 2(N-1)/N of the gradient
bytes per worker plus 2(N-1) latency hops; our train step all-reduces twice (once to check
and clip the global gradient, once inside the Keras optimizer), and nothing overlaps the
backward pass, so the model is pessimistic by design.

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
    p.add_argument("--allreduces", type=int, default=2, help="all-reduces per step")
    p.add_argument("--latency-us", type=float, default=50.0, help="per-hop network latency")
    p.add_argument(
        "--decode-rate", type=float, help="one worker's on-the-fly input, audio-s per second"
    )
    p.add_argument("--store-rate", type=float, help="one worker's store read, audio-s per second")
    p.add_argument(
        "--store-mb-per-hour", type=float, default=28.0, help="float16 store bytes per audio hour"
    )
    args = p.parse_args()
    grad_bytes = 4 * args.parameters
    print(
        f"gradient: {grad_bytes / 1e6:.1f} MB per all-reduce, {args.allreduces} per step; "
        f"compute {args.step_seconds * 1000:.0f} ms per step"
    )
    print(f"{'workers':>7} " + " ".join(f"{g:>4} Gb/s: audio-s/s  eff" for g in (10, 25, 100)))
    for n in (1, 2, 4, 8, 16, 32, 64):
        cells = []
        for gbps in (10, 25, 100):
            if n == 1:
                comm = 0.0
            else:
                volume = args.allreduces * 2 * (n - 1) / n * grad_bytes
                comm = (
                    volume / (gbps * 1e9 / 8)
                    + args.allreduces * 2 * (n - 1) * args.latency_us * 1e-6
                )
            step = args.step_seconds + comm
            rate = n * args.audio_per_step / step
            cells.append(f"{rate:>10.0f} {args.step_seconds / step:>5.0%}")
        print(f"{n:>7} " + " ".join(f"{c:>22}" for c in cells))
    if args.decode_rate and args.store_rate:
        input_table(args, grad_bytes)


def input_table(args, grad_bytes):
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
            comm = (
                args.allreduces * 2 * (n - 1) / n * grad_bytes / link
                + args.allreduces * 2 * (n - 1) * args.latency_us * 1e-6
            )
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
