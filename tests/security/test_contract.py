"""The error contract every security test relies on (issue #11)."""

from __future__ import annotations

from pathlib import Path

from zoo import hub
from zoo.hub.trust import UntrustedFileError


def test_untrusted_file_error_names_file_field_and_problem(tmp_path: Path) -> None:
    error = UntrustedFileError(tmp_path / "config.json", "is refused", field="hyperparameters.teacher")
    assert isinstance(error, ValueError)
    assert error.path == tmp_path / "config.json" and error.field == "hyperparameters.teacher"
    assert error.problem == "is refused"
    assert "config.json" in str(error) and "teacher" in str(error) and "is refused" in str(error)
    assert UntrustedFileError(tmp_path / "x.npy", "bad").field is None


def test_unsafe_format_error_is_an_untrusted_file_error() -> None:
    assert issubclass(hub.UnsafeFormatError, UntrustedFileError)
    assert issubclass(hub.UnsafeFormatError, ValueError)
