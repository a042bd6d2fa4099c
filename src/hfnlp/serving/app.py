"""The FastAPI app that serves one model: ``POST /predict`` behind a bearer token, ``GET /health`` open.

Requests are checked before they reach the model (422 with a message naming the input at fault); the model runs
through a :class:`~hfnlp.serving.batching.Batcher`; a failure of the model is a 500 with one line, its traceback in
the server log. ``/docs`` and ``/openapi.json`` (FastAPI's) describe the API and are open, like ``/health``:
they hold no model output.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

import hfnlp
from hfnlp.errors import DataError
from hfnlp.serving.batching import Batcher, ModelFailure
from hfnlp.serving.predictors import CaptionerPredictor, ImageClassifierPredictor, Predictor, TextClassifierPredictor

BEARER = HTTPBearer(auto_error=False, description="the token printed by (or given to) hfnlp serve")
# Inputs one request may carry: a bound on the work and memory one call can ask for (split bigger jobs).
MAX_INPUTS = 256


class TextRequest(BaseModel):
    """Texts to classify."""

    model_config = ConfigDict(extra="forbid")
    inputs: str | list[str] = Field(description="a text, or a list of texts", examples=["the food was great"])
    top_k: int | None = Field(None, ge=1, description="how many labels to return per text, best first (default 1)")


class ImageClassificationRequest(BaseModel):
    """Images to classify, base64-encoded (a ``data:image/...;base64,`` prefix is allowed)."""

    model_config = ConfigDict(extra="forbid")
    inputs: str | list[str] = Field(description="a base64-encoded image file (PNG, JPEG, ...), or a list of them")
    top_k: int | None = Field(None, ge=1, description="how many labels to return per image, best first (default 1)")


class CaptionRequest(BaseModel):
    """Images to caption, base64-encoded (a ``data:image/...;base64,`` prefix is allowed)."""

    model_config = ConfigDict(extra="forbid")
    inputs: str | list[str] = Field(description="a base64-encoded image file (PNG, JPEG, ...), or a list of them")


class LabelScore(BaseModel):
    """One label and its probability."""

    label: str
    score: float


class ClassificationResponse(BaseModel):
    """For each input, in order: its ``top_k`` labels, best first."""

    model: str
    predictions: list[list[LabelScore]]


class Caption(BaseModel):
    """One image's caption."""

    generated_text: str


class CaptionResponse(BaseModel):
    """For each input image, in order: its caption."""

    model: str
    predictions: list[Caption]


class Health(BaseModel):
    """What is served and whether it answers."""

    model: str
    task: str
    backend: str
    batching: bool
    ready: bool


def create_app(
    predictor: Predictor,
    token: str,
    model_name: str,
    max_batch_size: int = 32,
    max_wait_ms: float = 0.0,
    batching: bool = True,
    max_inputs: int = MAX_INPUTS,
) -> FastAPI:
    """The app serving ``predictor`` under ``model_name``; every route but ``/health`` (and the API docs) needs
    ``Authorization: Bearer <token>``. Its batcher is ``app.state.batcher``; it runs while the app's lifespan does
    (under uvicorn, or inside ``with TestClient(app)``)."""
    if not token:
        raise ValueError("the token must not be empty")
    batcher = Batcher(predictor, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, batching=batching)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title=f"hfnlp serve: {model_name}",
        version=hfnlp.__version__,
        description=f"{predictor.task} with {model_name}. Send `Authorization: Bearer <token>` with every request "
        "but /health.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    expected = token.encode()

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]) -> None:
        # compare_digest: the time taken does not tell how much of a guess was right.
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(
                401,
                "missing or wrong token: send the header 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/health")
    async def health() -> Health:
        """The model served and whether it is ready; needs no token."""
        return Health(
            model=model_name, task=predictor.task, backend=predictor.backend, batching=batching, ready=batcher.ready
        )

    async def run(inputs: list[Any], top_k: int | None = None) -> list[Any]:
        try:
            return await batcher.predict(inputs, top_k)
        except ModelFailure as error:
            raise HTTPException(500, str(error)) from error

    secured = [Depends(authorised)]
    if predictor.task == TextClassifierPredictor.task:

        @app.post("/predict", dependencies=secured)
        async def classify_texts(request: TextRequest) -> ClassificationResponse:
            """Classify one text or a list of texts."""
            texts = listed(request.inputs, max_inputs)
            blank = [i for i, text in enumerate(texts) if not text.strip()]
            if blank:
                unprocessable(f"inputs[{blank[0]}] is empty or blank: there is nothing to classify")
            return ClassificationResponse(model=model_name, predictions=await run(texts, request.top_k))

    elif predictor.task == ImageClassifierPredictor.task:

        @app.post("/predict", dependencies=secured)
        async def classify_images(request: ImageClassificationRequest) -> ClassificationResponse:
            """Classify one image or a list of images."""
            images = await decoded_images(listed(request.inputs, max_inputs))
            return ClassificationResponse(model=model_name, predictions=await run(images, request.top_k))

    elif predictor.task == CaptionerPredictor.task:

        @app.post("/predict", dependencies=secured)
        async def caption_images(request: CaptionRequest) -> CaptionResponse:
            """Caption one image or a list of images."""
            images = await decoded_images(listed(request.inputs, max_inputs))
            return CaptionResponse(model=model_name, predictions=await run(images))

    else:
        raise ValueError(f"no route for the task {predictor.task!r}")
    return app


def unprocessable(message: str) -> None:
    """Refuse the request with 422 and ``message``."""
    raise HTTPException(422, message)


def listed(inputs: str | list[str], max_inputs: int) -> list[str]:
    """``inputs`` as a list, refused when empty or longer than ``max_inputs``."""
    items = [inputs] if isinstance(inputs, str) else inputs
    if not items:
        unprocessable("inputs is an empty list: give at least one input")
    if len(items) > max_inputs:
        unprocessable(f"inputs holds {len(items)} items, more than the {max_inputs} one request may carry: split it")
    return items


async def decoded_images(encoded: list[str]) -> list[Any]:
    """The RGB images of base64 ``encoded`` image files, decoded in a thread (a large image takes a while)."""
    try:
        return await asyncio.to_thread(lambda: [decode_image(text, i) for i, text in enumerate(encoded)])
    except DataError as error:
        raise HTTPException(422, str(error)) from error


def decode_image(text: str, index: int) -> Any:
    """The RGB image of one base64-encoded image file (optionally a ``data:`` URL), or :class:`DataError` naming
    ``inputs[index]``."""
    from hfnlp.data.images import load_image

    name = f"inputs[{index}]"
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise DataError(f"{name} is not valid base64 ({error})") from error
    if not data:
        raise DataError(f"{name} is empty: give a base64-encoded image file")
    return load_image(data, name=name)
