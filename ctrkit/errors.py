"""The errors a user can cause. The command line prints them as one line (exit status 2); any other
exception is a bug in ctrkit and keeps its traceback. Both are ``ValueError``s."""


class DataError(ValueError):
    """Input data that cannot be used: one line naming the file, or the field and the row."""


class ConfigError(ValueError):
    """A setting a user wrote that ctrkit cannot use: one line naming the setting."""
