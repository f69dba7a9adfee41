"""Models: the built-in layer-list models the workbench CLI runs and quantizes (mlp, cnn, gpt2-block; see
builtin.py), and trainable example models built from compiler.nn: an MLP, a small CNN, a ResNet-style CNN
and a GPT-2-style decoder, each with a training script in examples/ (train_*.py); char_gpt.py holds the
character-level GPT's corpus, training, perplexity and cached weights (`workbench quantize char-gpt`).
"""

from .builtin import *  # noqa: F403 - the built-in models keep their names (models.mlp, models.Sequential)
from .builtin import __all__ as _builtin_all
from .gpt import GPT, GPTConfig
from .vision import MLP, BasicBlock, ResNet, SmallCNN

__all__ = list(_builtin_all) + ["MLP", "SmallCNN", "BasicBlock", "ResNet", "GPT", "GPTConfig"]
