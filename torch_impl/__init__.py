"""The PyTorch side of vit-parity. Imports torch/torchvision/numpy only, never tensorflow or jax."""
