import sys

from autotosis.cli import main

sys.exit(main())
