"""The DICOM Upper Layer on Trio: one task per association, pynetdicom's item codecs, no threads."""
