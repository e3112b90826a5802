"""`python -m colmena_fx.cli`, the same as the `colmena-fx` command."""

from __future__ import annotations

import sys

from colmena_fx.cli import main

sys.exit(main())
