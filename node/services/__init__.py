"""Operations shared by HTTP routes, the DICOM SCP and jobs: one code path each."""
