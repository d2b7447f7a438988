"""`python -m taxlens` runs the command line."""

from taxlens.cli import main

main()
