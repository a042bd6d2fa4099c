"""Sub-commands of ``hfnlp``: each module defines ``register(subparsers)`` and sets a ``handler``."""
