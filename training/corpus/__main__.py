"""`python -m training.corpus`: the corpus builder's command line."""

import sys

from .build import main

if __name__ == "__main__":
    sys.exit(main())
