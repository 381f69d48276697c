"""UPDP Review: utility-preserving de-identification of chest X-ray studies, reviewed in napari.

Importing the package is cheap on purpose: no torch, no Qt. Heavy parts load inside the
functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
