"""The synthetic chest X-ray cohort: procedural anatomy, findings, PHI-laden headers and reports.

Import the parts you need (``updp_napari.cohort.generate`` for ``make_cohort``); this
package itself imports nothing heavy.
"""
