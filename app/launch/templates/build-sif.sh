#!/bin/sh
# Build the SIF from the tarball (run where these files are).
cd @EXPORT_DIR@ 2>/dev/null || cd "$(dirname "$0")"
exec apptainer build @NAME@.sif @NAME@.def
