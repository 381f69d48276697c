"""UPDP Review: utility-preserving de-identification of chest X-ray studies, reviewed in napari.

Importing the package is cheap on purpose: no torch, no Qt. Heavy parts load inside the
functions that need them.
"""

import os as _os

__version__ = "0.1.0"

# torch's CPU threads wait for work by spinning. When another process holds one of the cores
# the spinning thread takes the time the working one needs: the filter went from 0.7 s to
# 46 s per image on two threads of two cores with one core busy. A short spin before
# sleeping keeps the speed of an idle machine (0.56 s per image) and costs little on a busy
# one (1.2 s; passive waiting: 0.72 and 2.7 s). Set before torch is first imported; what
# the user chose (either variable) is kept.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "1000")

__all__ = ["__version__"]
