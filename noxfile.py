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


@nox.session
def bench(session: nox.Session) -> None:
    """trio_runner against nginx + php-fpm (bench/run.py); arguments go to it.

    Not part of the default sessions: it installs nginx, php-fpm and wrk
    when missing and takes minutes. ``nox -s bench -- --quick`` is a smoke
    run.
    """
    install(session, "-e", ".[bench]")
    session.run("python", "bench/run.py", *session.posargs)
