"""`python -m dlcore.bench`: see dlcore.bench."""
from dlcore.bench.cli import main

raise SystemExit(main())
