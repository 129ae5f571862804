"""One error hierarchy for everything a user can fix.

Every message reads ``location: problem`` and, where we know the fix, ``HINT: fix``. Messages never contain
a patient identifier: locations are file, row and column only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    INTERNAL = 1  # a bug in casefind: please report it
    BAD_INPUT = 2  # extract files, mapping file or command-line options
    BAD_PROTOCOL = 3  # the selection protocol (rules YAML) or its codelists
    OUTPUT = 4  # an output could not be written (or would overwrite an archive)


MAX_LISTED_PROBLEMS = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input, located precisely."""

    location: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text}\n  HINT: {self.hint}" if self.hint else text


class UserError(Exception):
    """Something the user can fix. The CLI prints it without a traceback and exits with ``exit_code``."""

    exit_code = ExitCode.BAD_INPUT
    heading = "casefind cannot continue"

    def __init__(self, problems: list[Problem] | Problem | str, *, total: int | None = None, footer: str = ""):
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.total = max(total or 0, len(self.problems))
        self.footer = footer
        super().__init__(self.render())

    def render(self) -> str:
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        lines = [str(p) for p in shown]
        hidden = self.total - len(shown)
        if hidden > 0:
            lines.append(f"... and {hidden} more problem{'s' if hidden != 1 else ''} not shown")
        if len(lines) == 1:
            text = lines[0]
        else:
            count = f"{self.total} problem{'s' if self.total != 1 else ''}"
            text = f"{self.heading} ({count}):\n" + "\n".join(f"- {line}" for line in lines)
        return f"{text}\n{self.footer}" if self.footer else text


class ExtractError(UserError):
    """The extract files (or the column mapping) are missing, unreadable or contain bad rows."""

    exit_code = ExitCode.BAD_INPUT
    heading = "The extract has problems"


class OptionError(UserError):
    """A command-line option is invalid."""

    exit_code = ExitCode.BAD_INPUT


class ProtocolError(UserError):
    """The selection protocol (rules YAML) or one of its codelists is invalid."""

    exit_code = ExitCode.BAD_PROTOCOL
    heading = "The selection protocol has problems"


class OutputError(UserError):
    """An output file could not be written."""

    exit_code = ExitCode.OUTPUT
