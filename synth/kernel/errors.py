"""The one user-facing error class.

Core code raises :class:`SynthError` with a message that says what went wrong and what to do.
Pages catch it and show ``st.error``; the CLI prints it and exits non-zero.
"""


class SynthError(Exception):
    """A problem the user can fix; the message says how."""
