"""The DICOM tags the code names, as ``0xGGGGEEEE`` integers (pydicom's keys).

One place for them, so that a tag reads by its name wherever it is used and a search
for the name finds every use. Orthanc's JSON keys are these in ``gggg,eeee`` form
(:func:`node.dicom.tags.format_tag`). Tables of many tags (the main tags of each
level, the modules, the anonymization profiles) stay with the code that owns them.
"""

from __future__ import annotations

from typing import Final

# -- file meta information (group 0002) -------------------------------------------------
FILE_META_GROUP_LENGTH: Final = 0x00020000
FILE_META_VERSION: Final = 0x00020001
MEDIA_STORAGE_SOP_CLASS_UID: Final = 0x00020002
MEDIA_STORAGE_SOP_INSTANCE_UID: Final = 0x00020003
TRANSFER_SYNTAX_UID: Final = 0x00020010
IMPLEMENTATION_CLASS_UID: Final = 0x00020012
IMPLEMENTATION_VERSION_NAME: Final = 0x00020013

# -- DICOMDIR (group 0004) --------------------------------------------------------------
FILE_SET_ID: Final = 0x00041130
FIRST_ROOT_RECORD_OFFSET: Final = 0x00041200
LAST_ROOT_RECORD_OFFSET: Final = 0x00041202
FILE_SET_CONSISTENCY_FLAG: Final = 0x00041212
DIRECTORY_RECORD_SEQUENCE: Final = 0x00041220
NEXT_RECORD_OFFSET: Final = 0x00041400
RECORD_IN_USE_FLAG: Final = 0x00041410
LOWER_LEVEL_RECORD_OFFSET: Final = 0x00041420
DIRECTORY_RECORD_TYPE: Final = 0x00041430

# -- identification and dates (group 0008) ----------------------------------------------
SPECIFIC_CHARACTER_SET: Final = 0x00080005
INSTANCE_CREATION_DATE: Final = 0x00080012
INSTANCE_CREATION_TIME: Final = 0x00080013
SOP_CLASS_UID: Final = 0x00080016
SOP_INSTANCE_UID: Final = 0x00080018
STUDY_DATE: Final = 0x00080020
SERIES_DATE: Final = 0x00080021
ACQUISITION_DATE: Final = 0x00080022
CONTENT_DATE: Final = 0x00080023
STUDY_TIME: Final = 0x00080030
SERIES_TIME: Final = 0x00080031
ACQUISITION_TIME: Final = 0x00080032
CONTENT_TIME: Final = 0x00080033
ACCESSION_NUMBER: Final = 0x00080050
QUERY_RETRIEVE_LEVEL: Final = 0x00080052
RETRIEVE_AE_TITLE: Final = 0x00080054
MODALITY: Final = 0x00080060
MODALITIES_IN_STUDY: Final = 0x00080061
SOP_CLASSES_IN_STUDY: Final = 0x00080062
STUDY_DESCRIPTION: Final = 0x00081030
SERIES_DESCRIPTION: Final = 0x0008103E

# -- patient (group 0010) and de-identification (group 0012) ---------------------------
PATIENT_NAME: Final = 0x00100010
PATIENT_ID: Final = 0x00100020
PATIENT_BIRTH_DATE: Final = 0x00100030
PATIENT_IDENTITY_REMOVED: Final = 0x00120062
DEIDENTIFICATION_METHOD: Final = 0x00120063

# -- study, series and instance relations (group 0020) ---------------------------------
STUDY_INSTANCE_UID: Final = 0x0020000D
SERIES_INSTANCE_UID: Final = 0x0020000E
INSTANCE_NUMBER: Final = 0x00200013
IMAGES_IN_ACQUISITION: Final = 0x00201002
NUMBER_OF_TEMPORAL_POSITIONS: Final = 0x00200105
IMAGE_INDEX: Final = 0x00541330
NUMBER_OF_SLICES: Final = 0x00540081
NUMBER_OF_TIME_SLICES: Final = 0x00540101
CARDIAC_NUMBER_OF_IMAGES: Final = 0x00181090
NUMBER_OF_PATIENT_RELATED_STUDIES: Final = 0x00201200
NUMBER_OF_PATIENT_RELATED_SERIES: Final = 0x00201202
NUMBER_OF_PATIENT_RELATED_INSTANCES: Final = 0x00201204
NUMBER_OF_STUDY_RELATED_SERIES: Final = 0x00201206
NUMBER_OF_STUDY_RELATED_INSTANCES: Final = 0x00201208
NUMBER_OF_SERIES_RELATED_INSTANCES: Final = 0x00201209

# -- references (groups 0008 and 3006) ------------------------------------------------
REFERENCED_SOP_INSTANCE_UID: Final = 0x00081155
REFERENCED_FRAME_OF_REFERENCE_SEQUENCE: Final = 0x30060010
RT_REFERENCED_STUDY_SEQUENCE: Final = 0x30060012

# -- documents and pixels ---------------------------------------------------------------
ENCAPSULATED_DOCUMENT: Final = 0x00420011
PIXEL_REPRESENTATION: Final = 0x00280103
FLOAT_PIXEL_DATA: Final = 0x7FE00008
DOUBLE_FLOAT_PIXEL_DATA: Final = 0x7FE00009
PIXEL_DATA: Final = 0x7FE00010

# The DICOM identifiers from which an instance's four Orthanc IDs are computed, patient first.
HIERARCHY_TAGS: Final = (PATIENT_ID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID)
