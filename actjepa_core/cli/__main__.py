"""`python -m actjepa_core.cli ...` (and `torchrun -m actjepa_core.cli ...`)."""
import sys

from actjepa_core.cli import main

sys.exit(main())
