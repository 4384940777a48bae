from hypothesis import settings

settings.register_profile("keras_mlcl", max_examples=25, deadline=None, derandomize=True)
settings.load_profile("keras_mlcl")
