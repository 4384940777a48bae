"""The `keras-mlcl` command line."""
