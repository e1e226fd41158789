import os
import sys

from ._context import QUIET_TF
from .cli import main

# Before anything imports TensorFlow in this process (the children get it from _children).
os.environ.update(QUIET_TF)

sys.exit(main())
