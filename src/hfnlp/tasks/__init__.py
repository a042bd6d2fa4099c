"""Tasks: each module wires data → tokenization/processing → model → training for one task and registers it.

Modules here are imported on first use of :func:`hfnlp.recipe.get_task`, so adding a task means adding a
module, not editing a list.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
