"""Looking inside a model: the layer tree, activations, filter patterns and class activation maps.

Importing this package loads no TensorFlow; the functions get it through :mod:`engine.tf_runtime`.
Everything works on any Sequential or functional Keras model, including a base model nested one or
more levels deep (the book's ``Sequential([conv_base, Flatten(), Dense(1, "sigmoid")])``): layers
are addressed by paths like ``"efficientnet_lite0/top_activation"`` (see :mod:`engine.inspect.layers`).
"""
