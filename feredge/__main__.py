import sys

from feredge.cli import main

sys.exit(main())
