"""Offline stage (torch): model spec, distillation training and Taylor filter pruning.

A repository-root package (`python -m pruning.train ...` from the clone), not in the runtime wheel; needs the
`train` extra (`pip install -e ".[train]"`), and says so on import when torch is missing. It imports the
runtime; the runtime never imports it.
"""

from squeezerface.errors import require_extra

require_extra("pruning", ("torch",), "train")
