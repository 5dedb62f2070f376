"""`python -m dlcore.gpu_check`: see dlcore.gpu_check."""
from dlcore.gpu_check.cli import main

raise SystemExit(main())
