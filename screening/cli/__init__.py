"""The ``screening`` command line: one command per job, each a thin call into the library.

Command groups live in their own modules and register themselves on ``app``.
"""

from __future__ import annotations

import typer

from . import decisions, project, ranking, search, server

app = typer.Typer(
    name="screening",
    help="Find every relevant study while reading as few abstracts as possible.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (project, search, ranking, decisions, server):
    module.register(app)


def main() -> None:
    app()
