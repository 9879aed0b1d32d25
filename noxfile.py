"""Developer sessions: ``nox -s lint typing tests`` (what CI runs), ``bench``.

``./dev test`` runs them with ``--no-venv`` inside ``.venv``; plain ``nox``
builds a virtualenv per session and installs into it.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_venv = "yes"


def install(session: nox.Session, *args: str) -> None:
    """Install into the session's virtualenv; nothing when run --no-venv."""
    if session.venv_backend != "none":
        session.install(*args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and the ruff format check."""
    install(session, "-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the package."""
    install(session, "-e", ".[test,dev]")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, PHP tests included; arguments go to pytest."""
    install(session, "-e", ".[test]")
    session.run("pytest", *session.posargs)
