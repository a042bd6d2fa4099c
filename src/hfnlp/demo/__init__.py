"""``hfnlp demo``: a Gradio page for a saved model (:mod:`hfnlp.demo.app`), served here or written out as a
ready Hugging Face Space folder."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from hfnlp.errors import HfnlpError
from hfnlp.pipelines.loading import (
    IMAGE_CLASSIFIER,
    check_model_folder,
    load_image_classifier,
    model_kind,
    resolve_model_folder,
)
from hfnlp.training.atomic import atomic_path

# What the Space holds besides the model: the page, copied as is, and, for text, the attributions it shows.
SPACE_MODULES = {"demo_app.py": Path(__file__).with_name("app.py")}
ATTRIBUTION_SOURCE = Path(__file__).parents[1] / "explain" / "attribution.py"
SPACE_MODEL_DIR = "model"

SPACE_APP = '''"""{title}: a Gradio demo of an hfnlp {task} model, made by `hfnlp demo --space`.

Runs without hfnlp: transformers loads the model folder (a captioner or text classifier with the folder's own code,
trust_remote_code=True; an image classifier as a stock timm_wrapper model).
"""

{explainer_import}from demo_app import build_demo, load_pipeline

TASK = {task!r}
demo = build_demo(TASK, load_pipeline(TASK, {model_dir!r}), {title!r}{explainer_argument})

if __name__ == "__main__":
    demo.launch()
'''

SPACE_README = """---
title: {title}
emoji: 🤗
colorFrom: blue
colorTo: green
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
license: {license}
pinned: false
---

# {title}

A demo of the hfnlp {task} model in `{model_dir}/`. `app.py` loads it with transformers alone (with
`trust_remote_code=True` for the code a model folder may carry) and serves the page of `demo_app.py`.

Run it locally: `pip install -r requirements.txt gradio=={gradio_version} && python app.py`.
"""


def page_title(model: str | Path, task: str) -> str:
    """The page's (and the Space's) title: the task and the model's own name (a Hub id's or folder's last part)."""
    return f"hfnlp {task}: {Path(str(model)).name}"


def load_demo(model: str | Path, trust_remote_code: bool = False) -> Any:
    """The Gradio page (``gr.Blocks``, not launched) of the model in a model folder, run folder or Hub id."""
    from hfnlp.demo.app import build_demo

    folder = resolve_model_folder(model)
    task = model_kind(folder).task
    title = page_title(model, task)
    if task == "text-classification":
        from hfnlp.explain.attribution import explain_text
        from hfnlp.pipelines.text_classification import load_text_classifier

        return build_demo(task, load_text_classifier(folder, trust_remote_code), title, explain_text)
    if task == "image-captioning":
        from hfnlp.pipelines.loading import load_captioner

        return build_demo(task, load_captioner(folder, trust_remote_code), title)
    return build_demo(task, load_image_classifier(folder, trust_remote_code), title)


def write_space(model: str | Path, directory: str | Path, license: str = "apache-2.0") -> Path:
    """Write a Hugging Face Space for the model in a model folder, run folder or Hub id into ``directory`` (new or
    empty): ``app.py``, ``demo_app.py`` (and ``attribution.py`` for text), ``requirements.txt``, ``README.md`` with
    the Space's front matter, and the model folder under ``model/``. Written whole or not at all.

    Raises:
        HfnlpError: ``directory`` exists and is not an empty folder, or the model is no hfnlp model.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise HfnlpError(f"--space {directory}: exists and is not an empty folder; name a new or empty folder")
    folder = resolve_model_folder(model)
    kind = model_kind(folder)
    # A Space of a folder that cannot load would fail only once uploaded: refused here, in one line.
    check_model_folder(folder, kind)
    task = kind.task
    title = page_title(model, task)
    text = task == "text-classification"
    gradio_version = metadata.version("gradio")
    with atomic_path(directory) as staged:
        staged.mkdir(parents=True)
        shutil.copytree(folder, staged / SPACE_MODEL_DIR, ignore=shutil.ignore_patterns("*.tmp-*", "__pycache__"))
        for name, source in SPACE_MODULES.items():
            shutil.copyfile(source, staged / name)
        if text:
            shutil.copyfile(ATTRIBUTION_SOURCE, staged / "attribution.py")
        (staged / "app.py").write_text(
            SPACE_APP.format(
                title=title,
                task=task,
                model_dir=SPACE_MODEL_DIR,
                explainer_import="from attribution import explain_text\n" if text else "",
                explainer_argument=", explain_text" if text else "",
            ),
            encoding="utf-8",
        )
        (staged / "requirements.txt").write_text("\n".join(space_requirements(folder, task)) + "\n", encoding="utf-8")
        (staged / "README.md").write_text(
            SPACE_README.format(
                title=title, task=task, gradio_version=gradio_version, license=license, model_dir=SPACE_MODEL_DIR
            ),
            encoding="utf-8",
        )
    return directory


def space_requirements(folder: Path, task: str) -> list[str]:
    """The packages the Space's app and the model folder's own code import (gradio comes with the Space's SDK),
    pinned to the versions installed here, which made and tested the folder."""
    code = "\n".join(path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.py")))
    packages = ["torch", "transformers", "numpy", "pillow"]
    # Every image classifier runs through transformers' TimmWrapper, which imports timm: a stock timm_wrapper
    # folder has no code of its own that would show it.
    if task == IMAGE_CLASSIFIER.task or "import timm" in code:
        packages.append("timm")
    if "import jieba" in code:
        packages.append("jieba")
    return [f"{name}=={metadata.version(name)}" for name in packages]


__all__ = ["load_demo", "write_space"]
