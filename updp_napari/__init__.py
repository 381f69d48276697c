"""UPDP Review: utility-preserving de-identification of chest X-ray studies, reviewed in napari.

Importing the package is cheap on purpose: no torch, no Qt. Heavy parts load inside the
functions that need them.
"""

import os as _os

__version__ = "0.1.0"

# torch's CPU threads wait for work by spinning. When another process holds one of the cores
# the spinning thread takes the time the working one needs: the filter went from 0.7 s to
# 46 s per image on two threads of two cores with one core busy (1.0 s with this setting).
# Set before torch is first imported; a value chosen by the user is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["__version__"]
