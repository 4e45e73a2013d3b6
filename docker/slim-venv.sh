#!/bin/sh
# Drop what nothing needs at run time: C/C++ headers (tensorflow/include alone is
# ~290 MB) and debug symbols (libtensorflow_cc ships unstripped).
# Bytecode stays: it makes every start faster.
set -eu
venv="$1"
site="$(echo "$venv"/lib/python3*/site-packages)"
rm -rf "$site"/tensorflow/include "$venv"/include
# libclang (62 MB) is a dependency of TensorFlow's build-time op generators;
# nothing imports it when training.
rm -rf "$site"/clang
find "$site/tensorflow" "$site/tensorflow_cpu"* -name '*.so*' -type f 2>/dev/null \
  | xargs -r strip --strip-unneeded
echo "venv after slimming: $(du -sh "$venv" | cut -f1)"
