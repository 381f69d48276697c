"""Report de-identification: rule detectors, whitelist, and tag / mask / surrogate replacement."""

from .deidentifier import Redaction, ReportDeidentifier, SiteConfig
from .detectors import HeaderIdentifiers

__all__ = ["HeaderIdentifiers", "Redaction", "ReportDeidentifier", "SiteConfig"]
