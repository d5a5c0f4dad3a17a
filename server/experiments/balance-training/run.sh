#!/usr/bin/env bash
# One command for the experiment: Debian's packages it needs (the data set, torch, matplotlib for
# the figures), then run.py with its arguments. Nothing comes from anywhere but Debian's archive.
set -euo pipefail
cd "$(dirname "$0")"
python="${SYNBAL_PYTHON:-/usr/bin/python3}"
missing=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
"$python" -c 'import torch' >/dev/null 2>&1 || missing+=(python3-torch)
"$python" -c 'import matplotlib' >/dev/null 2>&1 || missing+=(python3-matplotlib)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing with apt: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
exec "$python" run.py "$@"
