"""Students, one module each, registered by the name a recipe uses."""

from distill.students.output import StudentOutput
from distill.students.registry import STUDENTS, get_student, register_student

from distill.students import bert_from_teacher, bilstm, narrow_bert  # noqa: E402,F401,I001


def load_student(directory):
    """Any saved student: BERT students via `from_pretrained`, the BiLSTM via its safetensors + JSON."""
    import json
    from pathlib import Path

    kind = json.loads((Path(directory) / "student_config.json").read_text())["student"]
    return get_student(kind).load(directory)


__all__ = ["STUDENTS", "StudentOutput", "get_student", "load_student", "register_student"]
