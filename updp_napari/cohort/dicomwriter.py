"""A DX or CR chest radiograph as a DICOM file, with the header PHI real files carry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .model import Study

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
PRIVATE_GROUP = 0x0019
PRIVATE_CREATOR = "RIS LINK 2.1"
# The implementation UID names the writer, not a site, so it is no identifier.
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.7101"
FIELD_OF_VIEW_MM = 430.0


def _da(d: dt.date) -> str:
    return d.strftime("%Y%m%d")


def _tm(t: dt.time) -> str:
    return t.strftime("%H%M%S")


def _later(t: dt.time, seconds: int) -> dt.time:
    return (dt.datetime.combine(dt.date(2000, 1, 1), t) + dt.timedelta(seconds=seconds)).time()


def _uid(study: Study, seed: int, what: str) -> str:
    return generate_uid(prefix=study.site.uid_root + ".",
                        entropy_srcs=[str(seed), study.study_id, what])


def build_dataset(study: Study, pixels: np.ndarray, seed: int, burned_in_header: str,
                  rng: np.random.Generator) -> tuple[Dataset, dict[str, str]]:
    """The image's dataset and the identifying values it holds, by element path."""
    site, patient, person = study.site, study.patient, study.patient.person
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = DX_FOR_PRESENTATION if site.modality == "DX" else CR_IMAGE
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = _uid(study, seed, "sop")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = "UPDP_COHORT_1"

    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _da(study.date)
    ds.StudyTime = _tm(study.time)
    ds.SeriesTime = _tm(_later(study.time, 40))
    ds.AcquisitionTime = _tm(_later(study.time, 65))
    ds.ContentTime = _tm(_later(study.time, 90))
    ds.AccessionNumber = study.accession
    ds.Modality = site.modality
    if site.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = site.manufacturer
    ds.InstitutionName = site.name
    ds.InstitutionAddress = f"{site.street}, {site.city}, {site.state} {site.zip_code}"
    ds.ReferringPhysicianName = study.referrer.dicom_name
    ds.StationName = site.station_name
    ds.StudyDescription = "CHEST " + ("PA AND LATERAL" if study.view == "PA" else "AP PORTABLE")
    if rng.random() < 0.2:
        # Some front ends append the patient's name to the description.
        ds.StudyDescription += f" - {person.last.upper()} {person.first.upper()}"
    ds.SeriesDescription = f"CHEST {study.view}"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.PerformingPhysicianName = study.radiologist.dicom_name
    ds.NameOfPhysiciansReadingStudy = study.radiologist.dicom_name
    ds.OperatorsName = study.technologist.dicom_name
    ds.ManufacturerModelName = site.model_name

    ds.PatientName = person.dicom_name
    ds.PatientID = patient.mrn
    ds.IssuerOfPatientID = site.short_name
    ds.PatientBirthDate = _da(patient.birth_date)
    ds.PatientSex = person.sex
    other = Dataset()
    other.PatientID = patient.ssn
    other.IssuerOfPatientID = "SSA"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = [other]
    ds.PatientAge = f"{min(study.age_years, 999):03d}Y"
    ds.PatientSize = f"{patient.height_m:.2f}"
    ds.PatientWeight = f"{patient.weight_kg:.1f}"
    # The population group where real files carry it: Ethnic Group (0010,2160), SH.
    ds.EthnicGroup = patient.group
    ds.PatientAddress = f"{patient.street}, {patient.city}, {patient.state} {patient.zip_code}"
    ds.PatientTelephoneNumbers = patient.phone

    ds.BodyPartExamined = "CHEST"
    ds.DeviceSerialNumber = site.device_serial
    ds.SoftwareVersions = "4.2.1"
    ds.ViewPosition = study.view
    ds.StudyInstanceUID = _uid(study, seed, "study")
    ds.SeriesInstanceUID = _uid(study, seed, "series")
    ds.StudyID = f"{int(rng.integers(10000, 99999))}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"]
    ds.BurnedInAnnotation = burned_in_header

    request = Dataset()
    request.AccessionNumber = study.accession
    request.RequestedProcedureID = f"RP{int(rng.integers(10**7, 10**8))}"
    request.ScheduledProcedureStepID = f"SPS{int(rng.integers(10**6, 10**7))}"
    request.RequestedProcedureDescription = "XR CHEST"
    ds.RequestAttributesSequence = [request]

    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", patient.mrn)
    block.add_new(0x11, "LO", f"{person.last}, {person.first}")
    block.add_new(0x12, "DS", "1.8")  # exposure index, not identifying

    rows, cols = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = site.photometric
    ds.Rows, ds.Columns = rows, cols
    spacing = f"{FIELD_OF_VIEW_MM / cols:.4f}"
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.PixelSpacing = [spacing, spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = site.bits_stored
    ds.HighBit = site.bits_stored - 1
    ds.PixelRepresentation = 0
    low, high = np.percentile(pixels, [1.0, 99.5])
    ds.WindowCenter = f"{(low + high) / 2:.1f}"
    ds.WindowWidth = f"{max(high - low, 1.0):.1f}"
    ds.VOILUTFunction = "LINEAR"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "INVERSE" if site.photometric == "MONOCHROME1" else "IDENTITY"
    ds.PixelData = pixels.astype("<u2").tobytes()

    private = f"({PRIVATE_GROUP:04X},1010)"
    phi = {
        "PatientName": str(ds.PatientName), "PatientID": ds.PatientID,
        "PatientBirthDate": ds.PatientBirthDate, "PatientAddress": ds.PatientAddress,
        "PatientTelephoneNumbers": ds.PatientTelephoneNumbers,
        "OtherPatientIDsSequence[0].PatientID": other.PatientID,
        "AccessionNumber": ds.AccessionNumber, "StudyID": ds.StudyID,
        "StudyDate": ds.StudyDate, "StudyTime": ds.StudyTime, "SeriesDate": ds.SeriesDate,
        "SeriesTime": ds.SeriesTime, "AcquisitionDate": ds.AcquisitionDate,
        "AcquisitionTime": ds.AcquisitionTime, "ContentDate": ds.ContentDate,
        "ContentTime": ds.ContentTime,
        "InstitutionName": ds.InstitutionName, "InstitutionAddress": ds.InstitutionAddress,
        "ReferringPhysicianName": str(ds.ReferringPhysicianName),
        "PerformingPhysicianName": str(ds.PerformingPhysicianName),
        "NameOfPhysiciansReadingStudy": str(ds.NameOfPhysiciansReadingStudy),
        "OperatorsName": str(ds.OperatorsName), "StationName": ds.StationName,
        "DeviceSerialNumber": ds.DeviceSerialNumber,
        "StudyInstanceUID": ds.StudyInstanceUID, "SeriesInstanceUID": ds.SeriesInstanceUID,
        "SOPInstanceUID": ds.SOPInstanceUID,
        "RequestAttributesSequence[0].AccessionNumber": request.AccessionNumber,
        "RequestAttributesSequence[0].RequestedProcedureID": request.RequestedProcedureID,
        "RequestAttributesSequence[0].ScheduledProcedureStepID": request.ScheduledProcedureStepID,
        private: patient.mrn,
        f"({PRIVATE_GROUP:04X},1011)": f"{person.last}, {person.first}",
    }
    if person.last.upper() in ds.StudyDescription:
        phi["StudyDescription"] = ds.StudyDescription
    if study.age_years >= 90:
        phi["PatientAge"] = ds.PatientAge
    return ds, phi


def write_dicom(ds: Dataset, path: Path) -> None:
    ds.save_as(path, enforce_file_format=True)
