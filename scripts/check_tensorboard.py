#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own EventAccumulator.

Usage: check_tensorboard.py DIR [TAG@STEP=VALUE | TAG=VALUE ...]

Prints every scalar (tag, step, value) found in the event files of DIR, then checks
each expectation: TAG must be a scalar tag and, with @STEP, hold VALUE at STEP (without,
at some step). Values compare as float32, as TensorBoard stores them. Exits 1 if an
expectation is not met or DIR holds no scalars, 2 on bad arguments.

The crate's test `tensorboard::tests::real_tensorboard_reads_our_files` runs this when
LSTM_TENSORBOARD_PYTHON names a Python with `tensorboard` installed.
"""

import math
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator


def as_f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def parse(spec):
    if "=" not in spec:
        raise ValueError(f"expected TAG[@STEP]=VALUE, got {spec!r}")
    key, value = spec.rsplit("=", 1)
    tag, step = key, None
    if "@" in key:
        tag, step = key.rsplit("@", 1)
        step = int(step)
    return tag, step, as_f32(float(value))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        wanted = [parse(s) for s in argv[2:]]
    except ValueError as e:
        print(f"check_tensorboard: {e}", file=sys.stderr)
        return 2
    acc = event_accumulator.EventAccumulator(
        argv[1], size_guidance={event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    tags = acc.Tags()["scalars"]
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in tags}
    for tag in sorted(scalars):
        for step, value in scalars[tag]:
            print(f"{tag}\t{step}\t{value!r}")
    failed = not scalars
    if failed:
        print(f"check_tensorboard: no scalars in {argv[1]}", file=sys.stderr)
    for tag, step, value in wanted:
        found = any(
            (step is None or s == step) and (v == value or (math.isnan(v) and math.isnan(value)))
            for s, v in scalars.get(tag, [])
        )
        if not found:
            at = "" if step is None else f" at step {step}"
            print(f"check_tensorboard: missing {tag}={value!r}{at}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
