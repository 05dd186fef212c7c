"""Models selected by ``model.name`` in params.yaml: an MLP and a small CNN for 8x8 images.

Each model is registered with its config class and built as
``registry.models.build(config.model, in_features=..., num_outputs=..., image_shape=...)``.
"""

from trainflow.models.cnn import CNN, CNNConfig
from trainflow.models.mlp import MLP, MLPConfig

__all__ = ["CNN", "MLP", "CNNConfig", "MLPConfig"]
