"""SplitStudy and MergeStudy jobs: /studies/{id}/split and /studies/{id}/merge.

The rewrite jobs of :mod:`.rewrite` with the split and merge rules of
:mod:`node.services.split_merge`: one step per moved instance, then the deletion of
the sources (KeepSource defaults to false here).
"""

from __future__ import annotations

from typing import ClassVar

from ...services.rewrite import InstanceRewrite
from ...services.split_merge import StudyMerge, StudySplit
from ..job import register_job_type
from .rewrite import RewriteJob


@register_job_type
class SplitStudyJob(RewriteJob[StudySplit]):
    type_name: ClassVar[str] = "SplitStudy"
    rewrite_type: ClassVar[type[InstanceRewrite]] = StudySplit


@register_job_type
class MergeStudyJob(RewriteJob[StudyMerge]):
    type_name: ClassVar[str] = "MergeStudy"
    rewrite_type: ClassVar[type[InstanceRewrite]] = StudyMerge
