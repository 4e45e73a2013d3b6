#!/bin/sh
# Drop what nothing needs at run time. Bytecode stays: it makes every start faster.
# Measured on the CPU venv (apparent MB): 1501 as installed less headers; each line says
# what it saves.
set -eu
venv="$1"
site="$(echo "$venv"/lib/python3*/site-packages)"

# C/C++ headers (tensorflow/include alone is ~290 MB); libclang (62 MB) serves TensorFlow's
# build-time op generators, nothing imports it when training.
rm -rf "$site"/tensorflow/include "$venv"/include "$site"/clang

# Installers (21 MB): the venv is root-owned and containers run as the caller, so nobody
# could pip install into it anyway.
"$venv"/bin/python -m pip uninstall -q -y pip setuptools wheel

# Packages' own test suites (29 MB). TensorFlow's are left alone: some of its modules are
# named test*.
find "$site" -path "$site/tensorflow" -prune -o -type d \( -name tests -o -name test \) -print \
  | xargs -r rm -rf

# Debug symbols (~40 MB): libtensorflow_cc ships unstripped, many other wheels too. Left as
# shipped: the libraries auditwheel vendored into *.libs/ (patchelf-edited: binutils' strip
# breaks them, "ELF load command address/offset not page-aligned"), and NVIDIA's CUDA
# libraries in the GPU image (no GPU here to prove them after).
find "$site" \( -path "$site/nvidia" -o -name '*.libs' \) -prune -o -name '*.so*' -type f -print \
  | xargs -r strip --strip-unneeded
strip --strip-unneeded "$site"/tensorboard_data_server/bin/server

# Jedi's stubs for third-party packages (14 MB; its stdlib stubs stay), JupyterLab's UI-test
# extension galata (6 MB), and Babel's locale data beyond English (29 MB): JupyterLab here
# has no language packs, and none can be installed into the root-owned venv.
rm -rf "$site"/jedi/third_party/typeshed/stubs "$site"/jedi/third_party/django-stubs \
       "$site"/jupyterlab/galata
# rm -f, not find -delete: on fuse-overlayfs a listed file was once gone by the time find
# unlinked it ("cannot delete ... No such file or directory"), failing the build.
find "$site"/babel/locale-data -name '*.dat' ! -name 'en.dat' ! -name 'en_*.dat' ! -name 'root.dat' \
  -exec rm -f -- {} +

# GPU image: CUDA headers and static archives (16 MB), for compiling against CUDA, which
# nothing does here (XLA needs only ptxas and libdevice, both kept).
if [ -d "$site"/nvidia ]; then
  rm -rf "$site"/nvidia/*/include
  find "$site"/nvidia -name '*.a' -type f -exec rm -f -- {} +
fi

echo "venv after slimming: $(du -sb "$venv" | awk '{printf "%d MB", $1 / 1e6}')"
