"""The one exception type for problems the user can fix (bad files, bad config)."""


class UserError(Exception):
    """A problem with the user's input: reported as one line, never as a traceback."""
