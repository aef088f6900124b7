"""Stage 2: a teacher labels augmented shards; logits and chosen features are cached to disk."""

from distill.label.config import LabelConfig
from distill.label.prepare import PreparedTeacher, check_input_labels, prepare_teacher
from distill.label.stage import LabelResult, run
from distill.label.teacher import TeacherMismatchError

__all__ = ["LabelConfig", "LabelResult", "PreparedTeacher", "TeacherMismatchError", "check_input_labels",
           "prepare_teacher", "run"]
