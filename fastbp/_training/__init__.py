"""The training engine: the checked plan of a fit, the training state and the one loop."""
