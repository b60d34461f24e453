"""cnnlab: convolutional neural networks for image classification."""
