import sys

from fitscope.cli import main

sys.exit(main())
