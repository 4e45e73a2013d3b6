"""Errors a user can cause (exit 2, one line) versus a training that failed (exit 1)."""


class UserError(Exception):
    """Something the user can fix: bad data, bad paths, bad run id. One-line message."""


class Interrupted(BaseException):
    """SIGINT/SIGTERM arrived: stop training, keep the last checkpoint, mark the run interrupted.

    A BaseException so that no `except Exception` inside Keras or our code swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
