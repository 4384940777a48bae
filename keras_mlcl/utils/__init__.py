"""Small helpers shared by several modules of keras-mlcl."""
