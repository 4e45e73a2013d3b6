"""Host side: everything that talks to the Docker engine. Never imports TensorFlow."""
