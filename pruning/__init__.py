"""Offline stage (torch): model spec, distillation training and Taylor filter pruning.

Imported as `squeezerface.pruning`; needs the `train` extra. The runtime never imports it.
"""
