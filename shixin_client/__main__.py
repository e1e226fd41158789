"""``python -m shixin_client`` runs the ``shixin`` command."""

import sys

from .cli import main

sys.exit(main())
