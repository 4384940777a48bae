"""`python -m keras_mlcl`: the `keras-mlcl` command."""

import sys

from keras_mlcl.cli.main import main

sys.exit(main())
