"""Every family's saved folder loads without hfnlp (``trust_remote_code=True``, Auto classes and ``pipeline``),
its model card's usage snippet runs there, and the outputs are identical to hfnlp's own loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, AutoModelForSequenceClassification
from transformers import pipeline as transformers_pipeline

from tests.hub.conftest import FAMILIES
from tests.hub.without_hfnlp import TEXTS

SCRIPT = Path(__file__).with_name("without_hfnlp.py")


def hfnlp_outputs(family: str, folder: Path) -> dict:
    """The same outputs as ``without_hfnlp.load``, computed with hfnlp's classes and loaders."""
    import hfnlp.models  # noqa: F401  (registers the families: no remote code runs below)

    with torch.no_grad():
        if family == "captioner":
            import hfnlp.pipelines.image_captioning  # noqa: F401  (registers the image-captioning task)

            captioner = transformers_pipeline("image-captioning", model=str(folder))
            pixels = captioner.image_processor(Image.open(folder / "example.png"), return_tensors="pt")
            auto = captioner.model.generate(pixel_values=pixels["pixel_values"]).tolist()
            return {"auto": auto, "pipeline": captioner(str(folder / "example.png")), "model": captioner.model}
        if family == "image_classifier":
            model = AutoModelForImageClassification.from_pretrained(folder).eval()
            pixels = AutoImageProcessor.from_pretrained(folder)(Image.open(folder / "example.png"), return_tensors="pt")
            classifier = transformers_pipeline("image-classification", model=str(folder))
            return {"auto": model(**pixels).logits.tolist(), "pipeline": classifier(str(folder / "example.png")),
                    "model": model}  # fmt: skip
        from hfnlp.pipelines.text_classification import classify, load_text_classifier
        from hfnlp.tokenization.text import load_saved_tokenizer

        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        batch = load_saved_tokenizer(folder)(TEXTS, padding=True, return_tensors="pt")
        # one text per forward, as the remote pipeline call runs: a padded batch may differ in the last float bits
        pipeline_outputs = classify(load_text_classifier(folder), TEXTS, batch_size=1)
        return {"auto": model(**batch).logits.tolist(), "pipeline": pipeline_outputs, "model": model}


@pytest.mark.slow
def test_every_family_loads_and_runs_identically_without_hfnlp(run_of, tmp_path):
    folders = {family: run_of(family) / "model" for family in FAMILIES}
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=json.dumps([{"family": family, "folder": str(folder)} for family, folder in folders.items()]),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    remote = json.loads(result.stdout.splitlines()[-1])
    assert remote.pop("hfnlp_modules") == []
    for family, folder in folders.items():
        expected = hfnlp_outputs(family, folder)
        got = remote[family]
        if family == "image_classifier":  # a stock timm_wrapper folder: transformers' own class, no remote code
            stock = "transformers.models.timm_wrapper.modeling_timm_wrapper"
            assert type(expected["model"]).__module__ == got["model_module"] == stock, family
        else:
            assert type(expected["model"]).__module__.startswith("hfnlp.models."), family
            assert got["model_module"].startswith("transformers_modules."), family  # the folder's own code ran
        assert got["auto"] == expected["auto"], family
        pipeline_outputs = expected["pipeline"]
        if family not in ("captioner", "image_classifier"):
            pipeline_outputs = [{"label": p["label"], "score": p["score"]} for p in pipeline_outputs]
        assert got["pipeline"] == pipeline_outputs, family
        printed = " ".join(got["snippets"])
        assert got["snippets"] and ("generated_text" if family == "captioner" else "'label'") in printed, family
