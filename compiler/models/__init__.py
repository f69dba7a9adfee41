"""Example models built from compiler.nn: an MLP, a small CNN, a ResNet-style CNN and a GPT-2-style decoder.

Each has a training script in examples/ (train_*.py) that runs on the default device."""

from .gpt import GPT, GPTConfig
from .vision import MLP, BasicBlock, ResNet, SmallCNN

__all__ = ["MLP", "SmallCNN", "BasicBlock", "ResNet", "GPT", "GPTConfig"]
