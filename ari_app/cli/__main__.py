"""`python -m ari_app.cli`: the `ivr112` command."""

import sys

from ari_app.cli import main

sys.exit(main())
