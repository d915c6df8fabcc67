"""Export a trained model to SavedModel, LiteRT, ONNX or .keras, checked against the Keras model.

``registry`` lists the formats (no TensorFlow); ``job.run`` exports, verifies and writes the model card.
"""
