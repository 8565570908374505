"""Server-side rendering for DICOMweb ``rendered`` and ``thumbnail`` (PS3.18 §8.3.5, §9.5).

Greyscale pipeline (PS3.3 C.11): stored values → Modality LUT (rescale or
Modality LUT Sequence) → VOI (explicit window, else the instance's first
window, else its VOI LUT Sequence, else the frame's min/max) → 8-bit,
MONOCHROME1 inverted. Colour: PALETTE COLOR through its LUT, YBR converted to
RGB, more than 8 bits scaled down. Enhanced multi-frame objects take rescale
and window values from the frame's functional groups.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import Dataset
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    convert_color_space,
)

from yunying.dicom.frames import decode_frame, frame_count, pixel_keyword
from yunying.errors import CannotDecode, NotAcceptable, NotFound

__all__ = ["render_frame", "render_pixels", "thumbnail", "window_for"]

Window = tuple[float, float] | tuple[float, float, str]

_FORMATS = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
}
_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
_U8 = npt.NDArray[np.uint8]


def _pil_format(media_type: str) -> str:
    key = media_type.split(";", 1)[0].strip().lower()
    fmt = _FORMATS.get(key)
    if fmt is None:
        raise NotAcceptable(
            f"cannot render as {media_type!r}; supported: image/jpeg, image/png, image/gif"
        )
    return fmt


def _frame_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """First item of a functional group macro for frame `index` (per-frame, then shared)."""
    for groups_kw, at in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_kw)
        if groups and at < len(groups):
            macro = groups[at].get(sequence)
            if macro:
                item: Dataset = macro[0]
                return item
    return None


def _first_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | bytes) and hasattr(value, "__getitem__"):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _voi_source(ds: Dataset, index: int) -> Dataset:
    item = _frame_item(ds, index, "FrameVOILUTSequence")
    return item if item is not None and "WindowCenter" in item else ds


def window_for(ds: Dataset, frame: int = 1) -> tuple[float, float] | None:
    """Return the instance's default VOI window.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance.
    frame : int, optional
        1-based frame number; enhanced multi-frame objects may carry a window
        per frame (Frame VOI LUT functional group).

    Returns
    -------
    tuple of (float, float) or None
        ``(center, width)`` from the first *Window Center* / *Window Width*
        values, or ``None`` when absent, unparsable or the width is not
        positive.
    """
    source = _voi_source(ds, frame - 1)
    center = _first_float(source.get("WindowCenter"))
    width = _first_float(source.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return center, width


def _rescale(ds: Dataset, index: int) -> tuple[float, float]:
    item = _frame_item(ds, index, "PixelValueTransformationSequence")
    source = item if item is not None and "RescaleSlope" in item else ds
    slope = _first_float(source.get("RescaleSlope"))
    intercept = _first_float(source.get("RescaleIntercept"))
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _modality(arr: npt.NDArray[Any], ds: Dataset, index: int) -> npt.NDArray[Any]:
    if ds.get("ModalityLUTSequence"):
        return apply_modality_lut(arr, ds)
    slope, intercept = _rescale(ds, index)
    if slope == 1.0 and intercept == 0.0:
        return arr
    out: npt.NDArray[np.float32] = np.multiply(arr, np.float32(slope), dtype=np.float32)
    out += np.float32(intercept)
    return out


def _minus(arr: npt.NDArray[Any], offset: float) -> npt.NDArray[np.float32]:
    result: npt.NDArray[np.float32] = np.subtract(arr, np.float32(offset), dtype=np.float32)
    return result


def _window(arr: npt.NDArray[Any], center: float, width: float, function: str) -> _U8:
    """Map `arr` to 0..255 with the PS3.3 C.11.2.1.2 / C.11.2.1.3 VOI functions."""
    if function == "SIGMOID":
        y = _minus(arr, center)
        y *= np.float32(-4.0 / width)
        np.exp(y, out=y)
        y += 1.0
        np.divide(np.float32(255.0), y, out=y)
    elif function == "LINEAR_EXACT":
        y = _minus(arr, center)
        y *= np.float32(255.0 / width)
        y += np.float32(127.5)
    elif width <= 1.0:  # LINEAR with W <= 1: a step at c - 0.5
        return np.where(arr > center - 0.5, 255, 0).astype(np.uint8)
    else:  # LINEAR: ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
        y = _minus(arr, center - 0.5)
        y *= np.float32(255.0 / (width - 1.0))
        y += np.float32(127.5)
    np.clip(y, 0.0, 255.0, out=y)
    np.rint(y, out=y)
    return y.astype(np.uint8)


def _stretch(arr: npt.NDArray[Any], low: float, high: float) -> _U8:
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    y = _minus(arr, low)
    y *= np.float32(255.0 / (high - low))
    np.clip(y, 0.0, 255.0, out=y)
    np.rint(y, out=y)
    return y.astype(np.uint8)


def _voi_lut(arr: npt.NDArray[Any], ds: Dataset) -> _U8 | None:
    """Apply the VOI LUT Sequence, scaled to the LUT's own output range."""
    item = ds.VOILUTSequence[0]
    descriptor = item.get("LUTDescriptor")
    if not descriptor or item.get("LUTData") is None:
        return None
    if not np.issubdtype(arr.dtype, np.integer):
        arr = np.rint(arr).astype(np.int32)
    entries = int(descriptor[0]) or 2**16
    first = int(descriptor[1])
    lut = apply_voi(np.arange(first, first + entries, dtype=np.int32), ds)
    mapped = apply_voi(arr, ds)
    return _stretch(mapped, float(lut.min()), float(lut.max()))


def _voi_function(name: str) -> str:
    function = name.strip().upper().replace("-", "_") or "LINEAR"
    if function not in _VOI_FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {name!r}")
    return function


def _greyscale(ds: Dataset, arr: npt.NDArray[Any], index: int, window: Window | None, pi: str) -> _U8:
    values = _modality(arr, ds, index)
    default = window_for(ds, index + 1)
    if window is not None:
        function = _voi_function(window[2]) if len(window) == 3 else "LINEAR"
        center, width = float(window[0]), float(window[1])
        if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
            raise ValueError("window width must be a positive number")
        out = _window(values, center, width, function)
    elif default is not None:
        name = str(_voi_source(ds, index).get("VOILUTFunction", "") or "LINEAR")
        function = name.strip().upper() if name.strip().upper() in _VOI_FUNCTIONS else "LINEAR"
        out = _window(values, default[0], default[1], function)
    else:
        mapped = _voi_lut(values, ds) if ds.get("VOILUTSequence") else None
        out = mapped if mapped is not None else _stretch(values, float(values.min()), float(values.max()))
    if pi == "MONOCHROME1":
        np.subtract(255, out, out=out)
    return out


def _to_8bit(arr: npt.NDArray[Any], bits: int) -> _U8:
    if arr.dtype == np.uint8:
        return arr.astype(np.uint8, copy=False)
    if bits <= 8 and int(arr.max(initial=0)) <= 255:
        return arr.astype(np.uint8)
    return _stretch(arr, 0.0, float(2**bits - 1))


def _colour(ds: Dataset, arr: npt.NDArray[Any], pi: str) -> _U8:
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)[..., :3]
        if rgb.dtype != np.uint8 and int(rgb.max(initial=0)) > 255:
            return (rgb >> 8).astype(np.uint8)  # 16-bit entries
        return rgb.astype(np.uint8)
    if arr.ndim != 3 or arr.shape[-1] < 3:
        raise CannotDecode(f"cannot render photometric interpretation {pi}")
    arr = arr[..., :3]
    bits_stored = int(ds.get("BitsStored") or 8 * arr.dtype.itemsize)
    rgb8 = _to_8bit(arr, bits_stored)
    if pi in ("YBR_FULL", "YBR_FULL_422"):  # pydicom did not convert it
        rgb8 = convert_color_space(rgb8, pi, "RGB")
    elif pi not in ("RGB", "YBR_ICT", "YBR_RCT"):  # J2K decoders already undo ICT/RCT
        raise CannotDecode(f"cannot render photometric interpretation {pi}")
    return rgb8


def _rendered_array(ds: Dataset, frame: int, window: Window | None) -> _U8:
    if pixel_keyword(ds) is None:
        raise CannotDecode("instance has no pixel data")
    count = frame_count(ds)
    if frame < 1 or frame > count:
        plural = "frame" if count == 1 else "frames"
        raise NotFound(f"frame {frame} does not exist: the instance has {count} {plural}")
    arr, pi = decode_frame(ds, frame - 1)
    if pi in ("MONOCHROME1", "MONOCHROME2") or (arr.ndim == 2 and pi != "PALETTE COLOR"):
        return _greyscale(ds, arr, frame - 1, window, pi)
    return _colour(ds, arr, pi)


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=quality)
    elif fmt == "PNG":
        # zlib level 6 takes seconds on mammography-sized images; level 1 is ~5x faster
        level = 6 if image.width * image.height <= 1_048_576 else 1
        image.save(buffer, format="PNG", compress_level=level)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def _to_image(pixels: _U8) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels))  # uint8 2-D → "L", (h, w, 3) → "RGB"


def render_frame(
    ds: Dataset,
    frame: int = 1,
    *,
    media_type: str = "image/jpeg",
    window: Window | None = None,
    viewport: tuple[int, int] | None = None,
    quality: int = 90,
) -> bytes:
    """Render one frame of an instance as a consumer image.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance (with File Meta Information).
    frame : int, optional
        1-based frame number (default 1).
    media_type : str, optional
        ``"image/jpeg"`` (default), ``"image/png"`` or ``"image/gif"``;
        parameters after ``;`` are ignored.
    window : tuple, optional
        ``(center, width)`` or ``(center, width, function)`` with function one
        of ``linear``, ``linear-exact``, ``sigmoid`` (PS3.18 ``window``
        parameter). Overrides the instance's own VOI. Ignored for colour.
    viewport : tuple of (int, int), optional
        ``(width, height)``: the image is scaled (up or down) to fit, aspect
        ratio preserved.
    quality : int, optional
        JPEG quality 1-100 (default 90).

    Returns
    -------
    bytes
        The encoded image: 8-bit greyscale (``L``) or ``RGB``.

    Raises
    ------
    CannotDecode
        No pixel data, or they cannot be decoded.
    NotFound
        `frame` is out of range.
    NotAcceptable
        `media_type` is not supported.
    ValueError
        Invalid window, viewport or quality.
    """
    fmt = _pil_format(media_type)
    if not 1 <= quality <= 100:
        raise ValueError("quality must be between 1 and 100")
    if viewport is not None and (viewport[0] < 1 or viewport[1] < 1):
        raise ValueError("viewport width and height must be positive")
    image = _to_image(_rendered_array(ds, frame, window))
    if viewport is not None:
        target = _fit(image.size, viewport)
        if target != image.size:
            image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _encode(image, fmt, quality)


def thumbnail(ds: Dataset, *, media_type: str = "image/jpeg", size: int = 128) -> bytes:
    """Render a thumbnail of an instance (PS3.18 §9.5).

    The middle frame of a multi-frame instance is used. The image is scaled
    down (never up) to fit within ``size`` × ``size``, aspect ratio preserved.

    Parameters
    ----------
    ds : pydicom.Dataset
        The instance (with File Meta Information).
    media_type : str, optional
        ``"image/jpeg"`` (default), ``"image/png"`` or ``"image/gif"``.
    size : int, optional
        Bounding box edge in pixels (default 128).

    Returns
    -------
    bytes
        The encoded thumbnail.

    Raises
    ------
    CannotDecode
        No pixel data, or they cannot be decoded.
    NotAcceptable
        `media_type` is not supported.
    ValueError
        `size` is not positive.
    """
    fmt = _pil_format(media_type)
    if size < 1:
        raise ValueError("thumbnail size must be positive")
    if pixel_keyword(ds) is None:
        raise CannotDecode("instance has no pixel data")
    middle = (frame_count(ds) + 1) // 2
    image = _to_image(_rendered_array(ds, middle, None))
    if image.width > size or image.height > size:
        image = image.resize(_fit(image.size, (size, size)), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _encode(image, fmt, 85)


def render_pixels(ds: Dataset, frame: int = 1, window: Window | None = None) -> npt.NDArray[np.uint8]:
    """The 8-bit pixels :func:`render_frame` encodes (before any resizing): ``(rows, columns)`` greyscale
    or ``(rows, columns, 3)`` RGB. Same pipeline, same errors; for callers that compose images (film sheets)."""
    return _rendered_array(ds, frame, window)
