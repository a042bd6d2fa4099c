"""The ``image-captioning`` pipeline: image(s) in, caption(s) out, optionally with each word's attention map.

Self-contained on purpose: ``Pipeline.save_pretrained`` copies this file into the model folder (and lists it
under ``custom_pipelines`` in ``config.json``), where hfnlp may not be installed, so it imports only torch,
numpy and transformers. Importing it registers the task with transformers::

    import hfnlp.models, hfnlp.pipelines.image_captioning  # noqa: F401  (in-process, with hfnlp)
    captioner = pipeline("image-captioning", model="runs/caption-quickstart/model")

    captioner = pipeline(model="runs/caption-quickstart/model", trust_remote_code=True)  # anywhere, no hfnlp

    captioner("photo.jpg", num_beams=3)  # [{"generated_text": "a dog runs on the grass"}]
    captioner("photo.jpg", generate_kwargs={"do_sample": True, "top_p": 0.9, "num_return_sequences": 3})

Saved folders list the pipeline under the task name ``hfnlp-image-captioning``, not ``image-captioning``:
transformers demands ``trust_remote_code=True`` for any task a folder lists in ``custom_pipelines``, which would
stop ``pipeline("image-captioning", model=folder)`` from using the registered, in-process class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageTextToText, Pipeline
from transformers.image_utils import load_image
from transformers.pipelines import PIPELINE_REGISTRY

TASK = "image-captioning"
# the task name a saved model folder lists in custom_pipelines (remote code)
SHARED_TASK = "hfnlp-image-captioning"


class ImageCaptioningPipeline(Pipeline):
    """Caption images with an image-captioning model (hfnlp's ``ImageCaptioner``) and its word tokenizer.

    Call arguments: ``num_beams``, ``max_new_tokens``, ``length_penalty`` and ``generate_kwargs`` (a dict of any
    other ``generate`` settings: ``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``no_repeat_ngram_size``,
    ``repetition_penalty``, ``min_new_tokens``, ``num_return_sequences``, ...) override the model's
    ``generation_config.json``; ``output_attentions`` adds ``words`` and ``attention`` (one map per word, shape
    (words, height, width), over the encoder's feature grid); ``timeout`` is for image URLs. Each image gives one
    result per returned sequence (``num_return_sequences``, default 1).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def _sanitize_parameters(
        self,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        generate_kwargs: dict[str, Any] | None = None,
        output_attentions: bool | None = None,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        named = {"num_beams": num_beams, "max_new_tokens": max_new_tokens, "length_penalty": length_penalty}
        forward = {**(generate_kwargs or {}), **{key: value for key, value in named.items() if value is not None}}
        postprocess = {}
        if output_attentions is not None:
            forward["output_attentions"] = output_attentions
            postprocess["output_attentions"] = output_attentions
        return ({"timeout": timeout} if timeout is not None else {}), forward, postprocess

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, torch.Tensor]:
        image = load_image(image, timeout=timeout)
        return self.image_processor(images=image, return_tensors="pt")

    def _forward(self, model_inputs: dict[str, torch.Tensor], output_attentions: bool = False, **generate_kwargs):
        output = self.model.generate(
            pixel_values=model_inputs["pixel_values"],
            output_attentions=output_attentions,
            return_dict_in_generate=True,
            **generate_kwargs,
        )
        # One row per image, its returned sequences inside: the pipeline splits batches by their first dimension.
        images = model_inputs["pixel_values"].shape[0]
        result = {"sequences": output.sequences.reshape(images, -1, output.sequences.shape[-1])}
        if output_attentions and output.attentions is not None:
            result["attentions"] = output.attentions.reshape(images, -1, *output.attentions.shape[1:])
        return result

    def postprocess(self, model_outputs: dict[str, torch.Tensor], output_attentions: bool = False) -> list[dict]:
        eos = self.model.generation_config.eos_token_id
        results = []
        for index, sequence in enumerate(model_outputs["sequences"][0].tolist()):
            words = sequence[1 : sequence.index(eos) if eos in sequence else len(sequence)]
            result: dict[str, Any] = {"generated_text": self.tokenizer.decode(words, skip_special_tokens=True)}
            if output_attentions:
                result["words"] = self.tokenizer.convert_ids_to_tokens(words)
                if "attentions" in model_outputs:
                    result["attention"] = model_outputs["attentions"][0][index][: len(words)].float().numpy()
                else:  # the no-attention baseline looks at the whole image for every word
                    result["attention"] = np.zeros((len(words), 1, 1), dtype=np.float32)
            results.append(result)
        return results


# The shared name last: Pipeline.save_pretrained writes the class's last registered task into config.json.
for _task in (TASK, SHARED_TASK):
    PIPELINE_REGISTRY.register_pipeline(
        _task, pipeline_class=ImageCaptioningPipeline, pt_model=AutoModelForImageTextToText, type="multimodal"
    )
