#!/usr/bin/env bash
# Set up (system graphviz + the package with its test extra) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq graphviz >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq graphviz >/dev/null; fi
fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then  # Fashion-MNIST
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null; fi
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then  # page tests (selenium)
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi
fi
python3 -m pip install -q -e '.[test,examples]'
python3 -m pytest -q "$@"
