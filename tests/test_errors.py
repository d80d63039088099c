"""The user's errors: every kind is a UserError and still a ValueError (a missing file also a FileNotFoundError), and
summary() picks the line of a third-party message that names the error."""
import pytest

from paddle_dynafast import errors


@pytest.mark.parametrize("kind", [errors.ConfigError, errors.DataError, errors.CheckpointError, errors.ArtifactError,
                                  errors.MissingFileError, errors.UntrustedFileError, errors.OutputBusyError,
                                  errors.TrainingError])
def test_every_kind_is_a_user_error_and_a_value_error(kind):
    error = kind("the message names it")
    assert isinstance(error, errors.UserError) and isinstance(error, ValueError) and str(error) == "the message names it"


def test_the_finer_kinds():
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    assert issubclass(errors.UntrustedFileError, errors.CheckpointError)
    assert not issubclass(errors.DataError, FileNotFoundError)


@pytest.mark.parametrize("message, line", [
    # Paddle puts "In user code:" and a stack before the line that says what went wrong
    ("In user code:\n\n    File \"model.py\", line 12, in forward\n      x = emb(ids)\n\n"
     "    ValueError: (InvalidArgument) Variable value (input) of OP(embedding) expected >= 0 and < 64\n"
     "      [Hint: Expected ids < 64.]", "ValueError: (InvalidArgument) Variable value (input) of OP(embedding) "
                                        "expected >= 0 and < 64"),
    ("\n  first line\nsecond line", "first line"),  # no line names an error: the first non-empty one
    ("one line", "one line"),
    ("  \n\n", "RuntimeError"),  # nothing to say: the error's type
])
def test_summary_picks_the_line_naming_the_error(message, line):
    assert errors.summary(RuntimeError(message)) == line


def test_summary_of_an_empty_error_is_its_type():
    assert errors.summary(KeyError()) == "KeyError"
