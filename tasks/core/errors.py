"""The one exception type for bad input: it names the file (and line) and what to do."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Input that the pipeline cannot use. `str()` gives `file:line: problem`."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        """`path`: a file, or a URL (kept as text: a Path would fold its `//`)."""
        self.message = message
        self.path = path if isinstance(path, str) and "://" in path else Path(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        from tasks.core.storage import shown  # a file in the mirror of object storage is shown by its URL

        where = ""
        if self.path is not None:
            place = shown(self.path)
            where = f"{place}:{self.line}: " if self.line is not None else f"{place}: "
        return where + self.message

    def __reduce__(self):  # keep file and line when the error crosses a process boundary
        return (DataError, (self.message, self.path, self.line))


class TimeLimitReached(TimeoutError):
    """A run's own time limit passed (Prefect marks the task TimedOut); what was finished is kept."""


class DataErrors(DataError):
    """Several problems found in one pass, reported together, with what to do about them."""

    def __init__(self, problems: list[DataError], hint: str = "Fix these.", limit: int = 20):
        self.problems, self.hint = problems, hint
        shown = "\n  ".join(str(p) for p in problems[:limit])
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        super().__init__(f"{len(problems)} problem(s) in the input:\n  {shown}{more}\n{hint}")

    def __reduce__(self):
        return (DataErrors, (self.problems, self.hint))
