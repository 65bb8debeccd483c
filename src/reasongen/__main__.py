"""`python -m reasongen` runs the command-line interface."""

from reasongen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
