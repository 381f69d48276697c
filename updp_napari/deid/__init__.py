"""De-identification, one module a job: report text (``deid.report``), the DICOM header's
PS3.15 profile (``deid.header``), burned-in text in the pixels (``deid.pixels``), whole files
and folders (``deid.dicom``), and the export gate that proves nothing identifying is left
(``deid.leaks``)."""
