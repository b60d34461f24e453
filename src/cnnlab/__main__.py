"""``python -m cnnlab`` runs the command-line interface."""

from cnnlab.cli import main

raise SystemExit(main())
