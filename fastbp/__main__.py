"""``python -m fastbp warmup``: see ``fastbp._warmup``."""

import sys

from ._warmup import main

sys.exit(main())
