"""Training genotypes from scratch, ImageNet scaling (N@F), size reports, and timm models.

Importing the package registers the zoo's networks with timm (see retrain.timm_models),
so that `timm.create_model("nas_darts_v2")` and timm's own scripts can build them.
"""
from . import timm_models  # noqa: F401  (the registration is the point of the import)
