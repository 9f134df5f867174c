#!/usr/bin/env bash
# Set up the package with the examples extra and train the example CNN on the bundled digits.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[examples]'
python3 examples/train_cnn.py "$@"
