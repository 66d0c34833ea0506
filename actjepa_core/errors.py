"""The one user-facing error type.

Every bad input (a missing file, a malformed key, NaN in the data, an unknown task) is raised as an
``ActJepaError`` whose message names the file/key/topic and what was expected. The CLI prints the
message alone (no traceback) and exits non-zero.
"""


class ActJepaError(Exception):
    """A user-facing error with a message that names the offending input and what was expected."""
