#!/usr/bin/env bash
# Prepare a device session: the wheels that a lent GPU machine (the `device` tool's nvidia-h200:
# Python 3.12 with PyTorch, numpy, huggingface_hub, safetensors, matplotlib, pyarrow, tensorboard,
# rich, tqdm, pytest, pytest-timeout; no network) lacks, plus this checkout built as a wheel.
# Run here, from anywhere, before the device call; they land in the ignored .whl/ (about 5 MB):
#
#     bash benchmarks/gpu_wheels.sh
#     # then the device tool: run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=560)
#
# The pins are the versions this repo's CI passes with; all are pure Python. moviepy and its
# imageio-ffmpeg (68 MB, over the tool's 64 MiB carry limit) are left out: only replay videos
# (zoo.hub.video, imported lazily) need them, and no gpu test or device benchmark records one.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
rm -rf .whl
mkdir -p .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest .whl \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2 sb3-contrib==2.9.2 \
    tyro==1.0.17 docstring-parser==0.18.0 typeguard==4.6.1
"$python" -m pip wheel --quiet --no-deps --wheel-dir .whl .
ls -1 .whl
du -sh .whl
