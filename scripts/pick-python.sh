#!/usr/bin/env bash
# Print the Python interpreter to build the virtual environment on.
#
# The distribution's own build of the same version as `python3` when the machine has one that
# can make virtual environments, else `python3` itself. Distributions build CPython with
# profile-guided and link-time optimisation; a Python compiled from source with the default
# options (as version managers such as pyenv do) runs the same pure-Python code more slowly:
# the report de-identifier's rules take about 14 % longer per report on such a build
# (`updp bench report` records which interpreter it ran on). Override with `make PYTHON=...`.
set -euo pipefail
default="${1:-python3}"
if ! version=$("$default" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
    echo "$default"
    exit 0
fi
system="/usr/bin/python$version"
if [ -x "$system" ] && "$system" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "$system"
else
    echo "$default"
fi
