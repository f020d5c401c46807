"""`python -m genesis` is the `genesis` command."""

from genesis.cli import run

run()
