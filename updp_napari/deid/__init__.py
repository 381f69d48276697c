"""De-identification: reports (``deid.report``); header and pixels arrive in their own modules."""
