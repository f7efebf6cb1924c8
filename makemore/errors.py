"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class MakemoreError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it."""


class TrainingDiverged(MakemoreError):
    """The training loss became infinite or NaN."""
