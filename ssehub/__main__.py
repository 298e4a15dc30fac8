"""`python -m ssehub` runs the CLI."""

from ssehub.cli import main

main()
