"""Run operations: everything around a training run, beside :mod:`hfnlp.training`, never under it.

- :mod:`~hfnlp.ops.session` — :func:`~hfnlp.ops.session.train`: a task run with its control room, then the model
  card and push (what ``hfnlp train`` and ``hfnlp sweep`` call)
- :mod:`~hfnlp.ops.control` — live control: the request channel and the callback that applies requests
- :mod:`~hfnlp.ops.live_status`, :mod:`~hfnlp.ops.live_plots` — the run's status and curves, kept up to date
- :mod:`~hfnlp.ops.notify` — notifications (webhooks, chat bots)
- :mod:`~hfnlp.ops.debug_subsets` — ``--limit-train`` and ``--overfit-batch``
- :mod:`~hfnlp.ops.dashboard` — the live page's HTTP server and static files
- :mod:`~hfnlp.ops.sweep` — grid sweeps and their comparison

This package imports nothing itself, so that ``hfnlp control`` and ``hfnlp dashboard`` start without torch.
"""
