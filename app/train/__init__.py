"""Container side: TensorFlow/Keras training. Never imports docker."""
