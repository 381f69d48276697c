"""The filter's network and its folder: a diffusers ``UNet2DModel`` and a ``DDIMScheduler``.

A filter folder is in the ``save_pretrained`` layout, so any diffusers tool opens it::

    DIR/unet/config.json, DIR/unet/diffusion_pytorch_model.safetensors
    DIR/scheduler/scheduler_config.json
    DIR/updp_filter.json        how to feed the UNet, how it was trained, default settings

``load_model_folder`` also takes folders made elsewhere: a pipeline folder (``unet/`` and
``scheduler/``) or a bare ``UNet2DModel`` folder. Without ``updp_filter.json`` the UNet must
be unconditional (as many input channels as output channels, 1 or 3); the filter then
steers it by known-region blending alone.

Conditioning of the filter's own UNet (``"conditioning": "mask+known"``): the noisy image
is stacked with the preserve mask and with the original inside that mask (zero elsewhere),
the layout of inpainting models. The label vector is left out on purpose: every finding
that must survive comes with its mask, and the pixels under the mask already say what it
is; labels on top would only steer the anatomy the filter is meant to draw afresh.

``patch`` > 1 folds each ``patch``×``patch`` block of pixels into channels before the UNet
and unfolds its output (pixel shuffle): the network works on a grid ``patch`` times smaller,
which is what lets a 128-pixel model run in well under a second on one CPU core.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError, UpdpError

MODEL_CARD = "updp_filter.json"
CARD_FORMAT = "updp-filter/1"
# What the filter's own UNets take besides the noisy image, channel by channel.
CONDITIONINGS = {"none": 0, "mask+known": 2}


@dataclass
class FilterModel:
    """A loaded UNet with its scheduler and the facts needed to feed it."""

    unet: object                  # diffusers.UNet2DModel
    scheduler: object             # diffusers.DDIMScheduler
    size: int                     # side of the images the model works on, in pixels
    patch: int = 1
    conditioning: str = "none"
    image_channels: int = 1       # 3 for an RGB model: grey is repeated, the output averaged
    path: Path | None = None
    card: dict = field(default_factory=dict)

    @property
    def conditioned(self) -> bool:
        return self.conditioning != "none"


def require_diffusers():
    """torch and diffusers, or a message saying how to install them."""
    try:
        import diffusers
        import torch
    except ImportError as exc:
        raise UpdpError(f"the generative filter needs torch and diffusers ({exc.name} is "
                        "missing): pip install updp-napari") from None
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    return torch, diffusers


def build_unet(size: int = 128, patch: int = 2, conditioning: str = "mask+known",
               channels: tuple[int, ...] = (32, 64, 64, 128), layers_per_block: int = 1,
               attention: bool = True):
    """A fresh, randomly initialised UNet for a ``size``-pixel grey image."""
    _, diffusers = require_diffusers()
    if conditioning not in CONDITIONINGS:
        raise UpdpError(f"unknown conditioning {conditioning!r} (one of {', '.join(CONDITIONINGS)})")
    grid = size // patch
    if size % patch or grid % (2 ** (len(channels) - 1)):
        raise UpdpError(f"size {size} must be a multiple of patch {patch} × "
                        f"{2 ** (len(channels) - 1)} (the UNet halves its grid per level)")
    levels = len(channels)
    down = ["DownBlock2D"] * levels
    up = ["UpBlock2D"] * levels
    if attention:  # attention only on the coarsest grid: global layout at little cost
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    fold = patch * patch
    return diffusers.UNet2DModel(
        sample_size=grid, in_channels=(1 + CONDITIONINGS[conditioning]) * fold, out_channels=fold,
        block_out_channels=tuple(channels), down_block_types=tuple(down),
        up_block_types=tuple(up), layers_per_block=layers_per_block,
        norm_num_groups=min(8, min(channels)), attention_head_dim=32)


def noise_schedule(prediction: str = "v_prediction"):
    """The training schedule the filter's own UNets use (cosine; sampled with DDIM)."""
    _, diffusers = require_diffusers()
    return diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                   prediction_type=prediction, clip_sample=True,
                                   timestep_spacing="trailing", set_alpha_to_one=True)


def _error(path: Path, exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _read_card(path: Path) -> dict:
    card_path = path / MODEL_CARD
    if not card_path.is_file():
        return {}
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{card_path}: not readable JSON") from None
    if not isinstance(card, dict) or not isinstance(card.get("model"), dict):
        raise InputError(f"{card_path}: no \"model\" section (size, patch, conditioning)")
    return card


def filter_card(folder: str | os.PathLike) -> dict:
    """The card of a filter folder, to change a section of it: an InputError naming the
    folder or the file when it is missing or not JSON."""
    card_path = Path(folder) / MODEL_CARD
    if not card_path.is_file():
        raise InputError(f"{folder}: not a filter folder (no readable filter card, {MODEL_CARD})")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{card_path}: no readable filter card (not JSON)") from None
    if not isinstance(card, dict):
        raise InputError(f"{card_path}: no readable filter card (not a JSON object)")
    return card


def set_card_section(folder: str | os.PathLike, name: str, value) -> None:
    """Write ``value`` as section ``name`` of the folder's card (the rest kept), atomically."""
    card = filter_card(folder)
    card[name] = value
    _write_card(Path(folder), card)


def _write_card(folder: Path, card: dict) -> None:
    from ..core.files import write_text_atomic

    write_text_atomic(folder / MODEL_CARD, json.dumps(card, indent=2, sort_keys=True) + "\n",
                      private=True)


def _weights_present(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def _unet_folder(path: Path) -> Path:
    """The folder holding the UNet's config.json: PATH/unet (pipeline layout) or PATH."""
    if not path.exists():
        raise InputError(f"{path}: no such model folder")
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (a model folder in the save_pretrained layout: "
                         "unet/ and scheduler/, or a UNet2DModel's config.json and weights)")
    for folder in (path / "unet", path):
        if (folder / "config.json").is_file():
            if not _weights_present(folder):
                raise InputError(f"{folder}: has config.json but no weights "
                                 "(*.safetensors or *.bin)")
            return folder
    raise InputError(f"{path}: not a diffusers model folder (missing unet/config.json and "
                     "config.json)")


def load_model_folder(path: str | os.PathLike, device: str = "cpu") -> FilterModel:
    """Load a filter folder, a diffusers pipeline folder or a ``UNet2DModel`` folder."""
    torch, diffusers = require_diffusers()
    path = Path(path)
    unet_dir = _unet_folder(path)
    try:
        config = json.loads((unet_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{unet_dir / 'config.json'}: not readable JSON") from None
    kind = config.get("_class_name") if isinstance(config, dict) else None
    if kind != "UNet2DModel":
        raise InputError(f"{unet_dir}: holds a model of class {kind or '(none named)'}; the "
                         "filter needs a diffusers UNet2DModel")
    card = _read_card(path)
    try:
        unet = diffusers.UNet2DModel.from_pretrained(str(unet_dir), local_files_only=True,
                                                     torch_dtype=torch.float32)
    except Exception as exc:  # diffusers raises many kinds; all mean "not loadable"
        raise InputError(f"{unet_dir}: cannot load the UNet ({_error(unet_dir, exc)})") from None
    scheduler_dir = path / "scheduler"
    if (scheduler_dir / "scheduler_config.json").is_file():
        try:
            scheduler = diffusers.DDIMScheduler.from_pretrained(str(scheduler_dir), local_files_only=True)
        except Exception as exc:
            raise InputError(f"{scheduler_dir}: cannot read the scheduler "
                             f"({_error(scheduler_dir, exc)})") from None
    elif card:
        scheduler = noise_schedule()
    else:  # a bare UNet: the diffusers default schedule, the one DDPM training uses
        scheduler = diffusers.DDIMScheduler()
    if scheduler.config.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise InputError(f"{path}: unknown prediction type {scheduler.config.prediction_type!r}")

    cin, cout = unet.config.in_channels, unet.config.out_channels
    sample = unet.config.sample_size
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    if card:
        info = card["model"]
        patch, conditioning = int(info.get("patch", 1)), info.get("conditioning", "none")
        if conditioning not in CONDITIONINGS:
            raise InputError(f"{path / MODEL_CARD}: unknown conditioning {conditioning!r}")
        if cin != (1 + CONDITIONINGS[conditioning]) * patch * patch or cout != patch * patch:
            raise InputError(f"{path}: the UNet's {cin} input / {cout} output channels do not "
                             f"fit {MODEL_CARD} (patch {patch}, conditioning {conditioning})")
        model = FilterModel(unet, scheduler, int(info.get("size", sample * patch)), patch,
                            conditioning, 1, path, card)
    elif cin == cout and cin in (1, 3):
        model = FilterModel(unet, scheduler, int(sample or 64), 1, "none", cin, path, {})
    else:
        raise InputError(f"{path}: a UNet with {cin} input and {cout} output channels and no "
                         f"{MODEL_CARD} saying how to feed it; without one the filter takes "
                         "unconditional models (1 or 3 channels in and out)")
    unet.to(device).eval()
    unet.requires_grad_(False)
    return model


def save_model_folder(out: str | os.PathLike, unet, scheduler, card: dict, fp16: bool = True) -> None:
    """Write ``out`` in the filter layout (weights in fp16 by default: half the disk),
    owner-only."""
    import copy

    torch, _ = require_diffusers()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stored = copy.deepcopy(unet).to("cpu")
    if fp16:
        stored = stored.to(torch.float16)
    stored.save_pretrained(str(out / "unet"), safe_serialization=True)
    # A model trained further remembers the folder it was loaded from: no local path leaves.
    config_path = out / "unet" / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.pop("_name_or_path", None) is not None:
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    scheduler.save_pretrained(str(out / "scheduler"))
    _write_card(out, dict(card, format=CARD_FORMAT))
    # Owner-only, as the report model: weights fitted to a hospital's images are treated like
    # them (a generative model can recall what it was trained on).
    os.chmod(out, 0o700)
    for path in out.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
