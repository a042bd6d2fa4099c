"""``hfnlp serve``: an HTTP inference API for a saved hfnlp model (FastAPI + uvicorn), with a bearer token and
dynamic batching.

- :mod:`~hfnlp.serving.predictors`: the model of each task, loaded from a folder, run folder or Hub id;
- :mod:`~hfnlp.serving.batching`: concurrent requests gathered into one forward pass;
- :mod:`~hfnlp.serving.app`: the FastAPI app (routes, request and response models, token check);
- :mod:`~hfnlp.serving.server`: options, token, port and uvicorn.
"""
