"""Image loading: one entry point, `load_image`, that turns whatever a user holds (a path, encoded bytes, a
numpy array) into the one layout the rest of the SDK assumes: RGB, uint8, HxWx3, C-contiguous.

Why the care: a face pipeline silently goes wrong on a BGR image, a sideways phone photo (EXIF orientation),
a 16-bit PNG or a half-downloaded JPEG. Each of those either gets normalised here or becomes an
`ImageDecodeError` that names the source and the reason, never a wrong embedding.

OpenCV is imported inside the functions that decode, so `import squeezerface` stays light.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from squeezerface.errors import ImageDecodeError, ImageTooLargeError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

ImageSource = Union[str, os.PathLike[str], bytes, bytearray, memoryview, np.ndarray, "PILImage"]
"""What `load_image` accepts: a file path, an encoded image (JPEG, PNG, WebP, BMP, TIFF, ... as OpenCV
decodes them), a decoded RGB/BGR/grey/RGBA array, or a PIL image."""

ChannelOrder = Literal["RGB", "BGR"]
"""Order of the colour channels of a 3- or 4-channel numpy array (4 channels: RGBA or BGRA)."""

CHANNEL_ORDERS: tuple[str, ...] = ("RGB", "BGR")

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest image (width x height) `load_image` accepts by default: a 40 MP photo is about 120 MB as RGB, and
anything larger is more likely a decompression bomb than a face photo."""

_CHUNK = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers carry the frame size. C4 (DHT), C8 (JPG extension) and CC (DAC) are not frames.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field: TEM and the restart markers (SOI is handled before the walk).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def load_image(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, channel_order: ChannelOrder = "RGB"
) -> np.ndarray:
    """Load `source` as an RGB uint8 HxWx3 C-contiguous array.

    source: a path (str or os.PathLike) to an image file; encoded image bytes (bytes, bytearray,
        memoryview); a numpy array: HxW grey, HxWx1 grey, HxWx3 colour, HxWx4 colour + alpha (alpha
        dropped), of dtype uint8, uint16 (scaled by >> 8) or float in [0, 1] (scaled by 255 and rounded);
        or a PIL image of any common mode (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I;16, I, F), with its
        EXIF orientation applied (PIL itself ignores it).
    max_pixels: width x height above which the image is refused. The size is read from the header of every
        format decoded (see `DECODED_FORMATS`), so an oversized image (a decompression bomb) is refused
        before any pixel is allocated; data whose header does not give its size is refused undecoded. A
        JPEG over the cap (a 50 MP phone photo) is instead decoded at 1/2, 1/4 or 1/8 of its size,
        whichever first fits, by libjpeg itself, so the full-size picture is never allocated; only one
        that does not fit even at 1/8 is refused.
    channel_order: "RGB" or "BGR", the order of a numpy array's colour channels (OpenCV's `cv2.imread`
        gives BGR). Encoded images and PIL images carry their own order, so it is ignored for them.

    Encoded images are decoded with EXIF orientation applied (a portrait phone photo comes out upright)
    and any alpha channel dropped. Arrays are always copied, so the caller's array is never aliased.

    Raises ImageDecodeError (naming the source and the reason) for a missing file, a directory, an empty
    or truncated file, data that is not an image, an unsupported dtype, shape or PIL mode, or an image
    over the cap; ValueError for a channel order other than RGB or BGR.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if isinstance(source, np.ndarray):
        name = f"<array shape={source.shape} dtype={source.dtype}>"
        if source.ndim in (2, 3):
            _check_pixels(source.shape[1], source.shape[0], max_pixels, name)
        image = _to_rgb_uint8(source, name, bgr=channel_order == "BGR")
        return image.copy() if np.may_share_memory(image, source) else image
    encoded = encoded_bytes(source)
    if encoded is not None:
        return _decode(encoded[0], encoded[1], max_pixels)
    if _is_pil_image(source):
        return _from_pil(source, max_pixels)  # type: ignore[arg-type]  # narrowed by _is_pil_image
    raise ImageDecodeError(
        f"<{type(source).__name__}>",
        "unsupported source type: pass a path, encoded image bytes, a numpy array or a PIL image",
    )


def decode_reduced(
    data: bytes, reduction: int, name: str, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Encoded bytes decoded as `load_image` does, a JPEG scaled down by `reduction` (1, 2, 4 or 8) while
    it decodes (libjpeg's DCT scaling: an area average, never the full-size image); other formats whole."""
    if reduction not in (1, 2, 4, 8):
        raise ValueError(f"reduction must be 1, 2, 4 or 8, got {reduction!r}")
    return _decode(bytes(data), name, max_pixels, at_least=reduction)


def encoded_bytes(source: ImageSource) -> tuple[bytes, str] | None:
    """(the encoded bytes, a name for messages) of a path or bytes source, read as `load_image` reads
    them; None for a decoded array or a PIL image."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = source if isinstance(source, bytes) else bytes(source)
        return data, f"<{len(data)} bytes>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return _read_file(path), str(path)
    return None


def is_jpeg(data: bytes | bytearray | memoryview) -> bool:
    """Whether encoded bytes start like a JPEG (the one format libjpeg can decode at a reduced scale)."""
    return bytes(data[:2]) == b"\xff\xd8"


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header of PNG or JPEG bytes, or None if it cannot be told.

    Pure and cheap (no decode), so a decompression bomb can be refused before any pixel is allocated.
    For JPEG the segments are walked to the first start-of-frame (SOFn) marker; the size is the stored
    one, before any EXIF rotation (which does not change the pixel count). None for other formats,
    truncated headers, or a JPEG whose height is deferred to a DNL marker (stored height 0).
    """
    data = data if isinstance(data, bytes) else bytes(data)
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return (width, height)
    size, _ = _walk_jpeg(data)
    return size


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks so a big file is never held in memory.

    Used as a cache key for images, so its failures are ImageDecodeError like `load_image`'s (missing
    file, directory, unreadable), and an app catching SqueezerfaceError catches both.
    """
    p = Path(path)
    _stat_regular_file(p)
    digest = hashlib.sha256()
    try:
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as e:
        raise ImageDecodeError(p, f"cannot read file ({e.strerror or e})") from e
    return digest.hexdigest()


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of in-memory bytes: the cache key of an image passed as encoded bytes."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------- internals


def _is_pil_image(source: object) -> bool:
    """True for a PIL image, without importing PIL: an object can only be one if PIL is already loaded."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(source, pil.Image)


_PIL_16BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _from_pil(image: PILImage, max_pixels: int) -> np.ndarray:
    """A PIL image as RGB uint8: EXIF orientation applied, then converted by its mode.

    16-bit grey (I;16*) is scaled by >> 8 like 16-bit arrays; 32-bit integer grey (I, which is how older
    PIL versions open 16-bit PNGs) is read as 8-bit when its values fit in 0..255 (as PIL's convert("I")
    makes them) and as 16-bit when they fit in 0..65535, else refused; float grey (F) must lie in [0, 1],
    as float arrays.
    Every other mode PIL can convert (1, L, LA, P, PA, RGBA, CMYK, YCbCr, LAB, HSV, ...) goes through
    `Image.convert("RGB")`, which drops alpha and applies a palette.
    """
    from PIL import ImageOps

    mode = image.mode
    name = f"<PIL image mode={mode} size={image.size[0]}x{image.size[1]}>"
    _check_pixels(image.size[0], image.size[1], max_pixels, name)
    try:
        upright = ImageOps.exif_transpose(image) or image
        if upright.mode in _PIL_16BIT:
            array = np.asarray(upright).astype(np.uint16)
        elif upright.mode == "I":
            array = np.asarray(upright)
            low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
            if low < 0 or high > 0xFFFF:
                raise ImageDecodeError(
                    name, "32-bit integer image with values outside 0..65535: convert it to 8 or 16 bit"
                )
            # PIL's own convert("I") keeps 8-bit values as they are (and convert("L") clips at 255), so
            # values within 0..255 are 8-bit; larger ones mean a 16-bit image.
            array = array.astype(np.uint8 if high <= 0xFF else np.uint16)
        elif upright.mode in ("F", "RGB"):
            array = np.asarray(upright)
        else:
            array = np.asarray(upright.convert("RGB"))
    except ImageDecodeError:
        raise
    except (OSError, ValueError, SyntaxError) as e:  # PIL's lazy decode: truncated data, unknown modes
        raise ImageDecodeError(name, f"PIL cannot provide the pixels ({e})") from e
    return np.array(_to_rgb_uint8(array, name, bgr=False), order="C")  # writable, owned by the caller


def _stat_regular_file(path: Path) -> os.stat_result:
    """stat() a path that must be a regular file, turning each way it is not into a precise reason."""
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise ImageDecodeError(path, "no such file") from e
    except OSError as e:
        raise ImageDecodeError(path, f"cannot access file ({e.strerror or e})") from e
    except ValueError as e:  # a NUL byte in the path: no file can have that name
        raise ImageDecodeError(repr(str(path)), f"not a valid path ({e})") from e
    if stat.S_ISDIR(st.st_mode):
        raise ImageDecodeError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or stream forever; an image is always a regular file.
        raise ImageDecodeError(path, "not a regular file")
    return st


def _read_file(path: Path) -> bytes:
    st = _stat_regular_file(path)
    if st.st_size == 0:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageDecodeError(path, f"cannot read file ({e.strerror or e})") from e


def _walk_jpeg(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """Walk JPEG marker segments: ((width, height) from the first SOFn, offset of the first SOS).

    Either is None when not found before the data ends or stops looking like JPEG. Segments are skipped
    by their length field, so markers inside an EXIF thumbnail are never mistaken for the image's own.
    """
    if not data.startswith(b"\xff\xd8"):
        return None, None
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            return size, None
        while i < n and data[i] == 0xFF:  # fill bytes may precede a marker
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xDA:
            return size, i
        if marker == 0xD9 or i + 2 > n:
            break
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            break
        if marker in _JPEG_SOF and size is None:
            if i + 7 > n:
                break
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            if height == 0 or width == 0:
                return None, None
            size = (width, height)
        i += length
    return size, None


def _check_pixels(width: int, height: int, max_pixels: int, name: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            name,
            f"image is {width} x {height} = {width * height:,} pixels, over the cap of {max_pixels:,} "
            f"({ImageTooLargeError.api_hint})",
        )


DECODED_FORMATS = "PNG, JPEG, WebP, AVIF, TIFF, BMP, GIF, JPEG 2000, PNM/PAM/PFM, Radiance HDR, Sun raster"
"""The encoded formats `load_image` decodes: those whose header it can read the image size from."""


def _u(data: bytes, offset: int, fmt: str) -> int | None:
    """One struct field at `offset`, or None past the end of the data."""
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        return None
    return int(struct.unpack_from(fmt, data, offset)[0])


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first IFD of a TIFF or BigTIFF (the page OpenCV decodes)."""
    e = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    first = _u(data, 8, e + "Q") if big else _u(data, 4, e + "I")
    if first is None:
        return None
    count = _u(data, first, e + ("Q" if big else "H"))
    if count is None:
        return None
    start, step = first + (8 if big else 2), 20 if big else 12
    value_at = 12 if big else 8
    found: dict[int, int] = {}
    for k in range(min(count, 4096)):
        entry = start + k * step
        tag, kind = _u(data, entry, e + "H"), _u(data, entry + 2, e + "H")
        if tag is None or kind is None:
            break
        if tag in (256, 257):
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            value = _u(data, entry + value_at, e + fmt) if fmt else None
            if value is not None:
                found[tag] = value
    return (found[256], found[257]) if 256 in found and 257 in found else None


def _text_tokens(data: bytes, start: int, count: int) -> list[bytes]:
    """The first `count` whitespace-separated tokens of a Netpbm header, '#' comments skipped."""
    tokens: list[bytes] = []
    for line in data[start:4096].splitlines():
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= count:
            break
    return tokens[:count]


def _ints(tokens: list[bytes]) -> tuple[int, int] | None:
    try:
        w, h = (int(t) for t in tokens)
    except ValueError:
        return None
    return (abs(w), abs(h))


def _pam_size(data: bytes) -> tuple[int, int] | None:
    fields: dict[bytes, bytes] = {}
    for line in data[3:4096].splitlines():
        words = line.split(b"#", 1)[0].split()
        if words[:1] == [b"ENDHDR"]:
            break
        if len(words) >= 2:
            fields[words[0]] = words[1]
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        return None
    return _ints([fields[b"WIDTH"], fields[b"HEIGHT"]])


_HDR_RESOLUTION = re.compile(rb"\n([-+])([XY]) +(\d+) +([-+])([XY]) +(\d+)")


def _hdr_size(data: bytes) -> tuple[int, int] | None:
    """The resolution line after the header's blank line, e.g. "-Y 480 +X 640"."""
    end = data.find(b"\n\n", 0, 65536)
    match = _HDR_RESOLUTION.match(data, end + 1) if end >= 0 else None
    if match is None:
        return None
    sizes = {match.group(2): int(match.group(3)), match.group(5): int(match.group(6))}
    return (sizes[b"X"], sizes[b"Y"]) if len(sizes) == 2 else None


def _isobmff_size(data: bytes) -> tuple[int, int] | None:
    """AVIF/HEIF: the largest width and height of any image spatial extent ('ispe') property."""
    widths, heights, at = [], [], data.find(b"ispe")
    while at >= 0:
        w, h = _u(data, at + 8, ">I"), _u(data, at + 12, ">I")
        if w is not None and h is not None:
            widths.append(w)
            heights.append(h)
        at = data.find(b"ispe", at + 4)
    return (max(widths), max(heights)) if widths else None


def _other_format_size(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """(format, (width, height)) from the header of the formats OpenCV decodes besides PNG and JPEG, read
    the way their decoders read it; (format, None) when the header is cut or damaged; (None, None) when no
    known signature matches. Sizes are those the decoder allocates (or larger), so they bound memory."""
    head = data[:16]
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF", _tiff_size(data)
    if head[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w, h = _u(data, 26, "<H"), _u(data, 28, "<H")
            return "WebP", None if w is None or h is None else (w & 0x3FFF, h & 0x3FFF)
        if chunk == b"VP8L" and data[20:21] == b"\x2f":
            bits = _u(data, 21, "<I")
            return "WebP", None if bits is None else ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        if chunk == b"VP8X" and len(data) >= 30:
            return "WebP", (
                1 + int.from_bytes(data[24:27], "little"),
                1 + int.from_bytes(data[27:30], "little"),
            )
        return "WebP", None
    if head[:2] == b"BM":
        header = _u(data, 14, "<I")
        if header == 12:
            w, h = _u(data, 18, "<H"), _u(data, 20, "<H")
        else:
            w, h = _u(data, 18, "<i"), _u(data, 22, "<i")
        return "BMP", None if w is None or h is None else (abs(w), abs(h))
    if head[:6] in (b"GIF87a", b"GIF89a"):
        w, h = _u(data, 6, "<H"), _u(data, 8, "<H")
        return "GIF", None if w is None or h is None else (w, h)
    if (
        head[:1] == b"P"
        and head[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6", b"F", b"f")
        and head[2:3].isspace()
    ):
        tokens = _text_tokens(data, 2, 2)
        return "PNM", _ints(tokens) if len(tokens) == 2 else None
    if head[:2] == b"P7" and head[2:3].isspace():
        return "PAM", _pam_size(data)
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return "HDR", _hdr_size(data)
    if head[:4] == b"\x59\xa6\x6a\x95":
        w, h = _u(data, 4, ">I"), _u(data, 8, ">I")
        return "Sun raster", None if w is None or h is None else (w, h)
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        at = data.find(b"ihdr", 0, 65536)
        h, w = (_u(data, at + 4, ">I"), _u(data, at + 8, ">I")) if at >= 0 else (None, None)
        return "JPEG 2000", None if w is None or h is None else (w, h)
    if head[:4] == b"\xff\x4f\xff\x51":
        w, h = _u(data, 8, ">I"), _u(data, 12, ">I")
        return "JPEG 2000", None if w is None or h is None else (w, h)
    if data[4:8] == b"ftyp":
        return "AVIF/HEIF", _isobmff_size(data)
    return None, None


def _decode(data: bytes, name: str, max_pixels: int, at_least: int = 1) -> np.ndarray:
    """Decode encoded bytes with OpenCV, EXIF orientation applied, and normalise to RGB uint8.

    at_least: a JPEG is decoded scaled down by at least this (1, 2, 4 or 8; libjpeg scales while it
    decodes, so a 12 MP photo wanted at 1/4 never exists at full size). Other formats ignore it.

    Flags: IMREAD_ANYCOLOR | IMREAD_ANYDEPTH. Unlike IMREAD_UNCHANGED it applies EXIF orientation (OpenCV
    skips orientation only for UNCHANGED or IGNORE_ORIENTATION), and unlike IMREAD_COLOR it keeps grey as
    one channel and 16-bit as uint16, so the same conversion as for arrays (>> 8, grey -> RGB) applies.
    Alpha is dropped by the decoder.
    """
    if not data:
        raise ImageDecodeError(name, "empty input (0 bytes)")
    if data.startswith(_PNG_SIGNATURE):
        kind: str | None = "PNG"
        size = image_size_from_header(data)
    elif data.startswith(b"\xff\xd8"):
        kind = "JPEG"
        size, sos = _walk_jpeg(data)
        # libjpeg decodes a cut-off file into a partly grey picture with only a warning in some OpenCV
        # builds; a JPEG without its end-of-image marker after the scan data is refused here instead.
        if sos is not None and data.find(b"\xff\xd9", sos) < 0:
            raise ImageDecodeError(
                name, "not a decodable image (JPEG ends before its end-of-image marker: truncated file)"
            )
    else:
        kind, size = _other_format_size(data)
    # Every decoder allocates the whole image before it reads a pixel, and a few KB of compressed data can
    # claim gigapixels: the size must be known, and within the cap, before OpenCV sees the data.
    if kind is None:
        raise ImageDecodeError(
            name, f"not a decodable image (not one of the formats squeezerface decodes: {DECODED_FORMATS})"
        )
    if size is None:
        raise ImageDecodeError(
            name, f"not a decodable image (its {kind} header does not give the image size: cut or damaged)"
        )
    import cv2

    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    reduce = max(jpeg_reduction(size[0], size[1], max_pixels), at_least) if kind == "JPEG" else 1
    if reduce > 1:  # libjpeg scales while it decodes: the full-size image is never allocated
        flags = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[
            reduce
        ]
    else:
        _check_pixels(size[0], size[1], max_pixels, name)
    try:
        decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ImageDecodeError(name, f"not a decodable image (OpenCV error: {reason})") from e
    if decoded is None:
        raise ImageDecodeError(
            name, "not a decodable image (OpenCV could not decode it: truncated, corrupt or not an image)"
        )
    _check_pixels(decoded.shape[1], decoded.shape[0], max_pixels, name)
    return _to_rgb_uint8(decoded, name, bgr=True)


def jpeg_reduction(width: int, height: int, max_pixels: int) -> int:
    """The smallest of 1, 2, 4, 8 by which a JPEG of this size must be scaled down while decoding to fit
    under `max_pixels` (libjpeg decodes at 1/2, 1/4 and 1/8 natively), or 1 when even 1/8 does not fit
    (the image is then refused as over the cap)."""
    for r in (1, 2, 4, 8):
        if -(-width // r) * -(-height // r) <= max_pixels:
            return r
    return 1


def _to_rgb_uint8(array: np.ndarray, name: str, *, bgr: bool) -> np.ndarray:
    """Normalise a decoded or user-supplied array to RGB uint8 HxWx3 (C-contiguous, maybe a view).

    bgr: channel order of a 3/4-channel input (True for OpenCV's decoder output, False for user arrays).
    """
    if array.ndim == 2:
        channels = 1
    elif array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array.shape[2]
    else:
        raise ImageDecodeError(
            name, f"unsupported array shape {array.shape}: expected HxW, HxWx1, HxWx3 or HxWx4"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageDecodeError(name, f"empty image (shape {array.shape})")

    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32, copy=False)
        if not np.isfinite(values).all():
            raise ImageDecodeError(name, "float image holds NaN or infinity")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise ImageDecodeError(
                name,
                f"float image values must lie in [0, 1], got [{low:g}, {high:g}]; scale it or pass uint8",
            )
        pixels = np.rint(values * 255.0).astype(np.uint8)
    else:
        raise ImageDecodeError(
            name, f"unsupported dtype {array.dtype}: expected uint8, uint16 or float in [0, 1]"
        )

    if channels == 1:
        grey = pixels if pixels.ndim == 2 else pixels[:, :, 0]
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if bgr and channels == 3 and pixels.flags.c_contiguous:
        import cv2  # one pass in C: a strided numpy copy of a 12 MP photo costs ~50 ms more

        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    rgb = pixels[:, :, 2::-1] if bgr else pixels[:, :, :3]
    return np.ascontiguousarray(rgb)
