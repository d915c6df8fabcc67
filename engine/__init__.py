"""ConvScope engine: datasets, training, and model introspection on Keras 3.

Importing this package must stay cheap: no TensorFlow, no Keras, no Qt. Modules that
need TensorFlow import it inside functions (see ``engine.tf_runtime``).
"""

__version__ = "0.1.0"
