"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Bad input (a file, a config key, a flag): the message names it and says what to do."""
