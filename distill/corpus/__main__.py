import sys

from distill.corpus.cli import main

sys.exit(main())
