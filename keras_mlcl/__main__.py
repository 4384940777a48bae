"""`python -m keras_mlcl`: the `keras-mlcl` command."""

from keras_mlcl_launcher import main

main()
