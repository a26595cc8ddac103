"""Fuzz recipes for the reliability benchmark and the tests: each case is a recipe,
{"kind": ..., "seed": ...}, from which `build_case` makes one input deterministically; `run_case` puts it
through a `FaceVerifier`, and `run_fuzz` runs many in watched worker processes (crash, hang and memory-cap
detection); `replay` runs one in process. Used by benchmarks/reliability.py (the long runs) and
tests/test_fuzz_inputs.py / tests/test_reliability.py (CI-sized samples). No torch; PIL only for the
PIL-image recipes."""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import struct
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from squeezerface.bench.memory import peak_rss_mb

# beside a source checkout: this file is <checkout>/sdk/squeezerface/bench/fuzz.py
DEFAULT_LFW = Path(__file__).resolve().parents[4] / "shared" / "data" / "lfw"
KNOWN_PHOTOS = (
    "George_W_Bush/George_W_Bush_0007.jpg",
    "Colin_Powell/Colin_Powell_0038.jpg",
    "Serena_Williams/Serena_Williams_0001.jpg",
    "Tony_Blair/Tony_Blair_0001.jpg",
)
SELFTEST_KINDS = ("selftest_raise", "selftest_hang", "selftest_segfault", "selftest_alloc")
"""Cases that misbehave on purpose (only with --selftest): proof that the harness sees each failure."""

# ----------------------------------------------------------------------------------------------- inputs


def _photos(lfw: Path | None) -> list[np.ndarray]:
    """A few real face photos (RGB) from LFW when it is there, else synthetic pictures."""
    import cv2

    images = []
    folder = (lfw / "images") if lfw is not None else None
    if folder is not None and folder.is_dir():
        paths = [folder / p for p in KNOWN_PHOTOS if (folder / p).is_file()]
        if not paths:
            names = sorted(os.listdir(folder))[:4]
            paths = [next(iter(sorted((folder / n).glob("*.jpg"))), folder) for n in names]
        for p in paths:
            bgr = cv2.imread(str(p))
            if bgr is not None:
                images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not images:  # synthetic: a light oval "face" with dark eyes and mouth on a gradient
        for k in range(2):
            y, x = np.mgrid[0:250, 0:250]
            img = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8)
            cv2.ellipse(img, (125, 125), (60 + 5 * k, 80), 0, 0, 360, (224, 186, 160), -1)
            for cx in (100, 150):
                cv2.circle(img, (cx, 105), 8, (40, 30, 30), -1)
            cv2.ellipse(img, (125, 165), (22, 8), 0, 0, 360, (120, 40, 40), -1)
            images.append(img)
    return images


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    """An RGB image in an encoded format (OpenCV's encoders; PIL for JPEG 2000)."""
    import cv2

    if fmt in ("jp2", "j2k"):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG2000", no_jp2=fmt == "j2k")
        return buf.getvalue()
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt in ("pgm", "pbm"):
        image = image[:, :, 0]
    if fmt == "hdr":
        image = image.astype(np.float32) / 255.0
    ok, encoded = cv2.imencode("." + fmt, image)
    if not ok:
        raise RuntimeError(f"cannot encode .{fmt}")
    return encoded.tobytes()


ENCODED_FORMATS = (
    "jpg",
    "png",
    "webp",
    "tiff",
    "bmp",
    "gif",
    "ppm",
    "pgm",
    "pam",
    "hdr",
    "ras",
    "jp2",
    "j2k",
)


def tiff_bomb(width: int, height: int, channels: int = 1) -> bytes:
    """A TIFF whose one deflate strip really decodes to width x height x channels zero bytes (~1000:1)."""
    co = zlib.compressobj(9)
    row = bytes(width * channels)
    data = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    entries = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 8),  # deflate
        (262, 3, 2 if channels == 3 else 1),
        (273, 4, 0),  # strip offset, set below
        (277, 3, channels),
        (278, 4, height),
        (279, 4, len(data)),
        (284, 3, 1),
    ]
    offset = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = offset if tag == 273 else value
        out += (
            struct.pack("<HHIHH", tag, kind, 1, value, 0)
            if kind == 3
            else struct.pack("<HHII", tag, kind, 1, value)
        )
    return out + struct.pack("<I", 0) + data


def jpeg_junk_bomb(width: int, height: int) -> bytes:
    """A tiny JPEG whose frame header claims width x height, with two stray bytes before it: libjpeg skips
    them with a warning, a strict header walk stops there (the bug this benchmark found, now refused)."""
    import cv2

    small = cv2.imencode(".jpg", np.zeros((16, 16), np.uint8))[1].tobytes()
    sof = small.index(b"\xff\xc0")
    patched = small[: sof + 5] + struct.pack(">HH", height, width) + small[sof + 9 :]
    dqt = small.index(b"\xff\xdb")
    return patched[:dqt] + b"\x00\x00" + patched[dqt:]


class Assets:
    """Inputs every recipe builds from, made once per process: photos, their encodings, aligned faces."""

    def __init__(self, lfw: Path | None, verifier: Any = None) -> None:
        import cv2

        self.photos = _photos(lfw)
        small = [cv2.resize(p, (96, 96), interpolation=cv2.INTER_AREA) for p in self.photos[:2]]
        self.encoded: dict[str, list[bytes]] = {}
        for fmt in ENCODED_FORMATS:
            try:
                self.encoded[fmt] = [_encode(self.photos[0], fmt), _encode(small[0], fmt)]
            except Exception:  # an encoder this OpenCV/PIL build lacks
                continue
        self.aligned: list[np.ndarray] = []
        if verifier is not None:
            for photo in self.photos:
                try:
                    face = verifier.detector.detect(photo)[0]
                    self.aligned.append(verifier.embedder.align(photo, face))
                except Exception:
                    continue
        if not self.aligned:
            self.aligned = [cv2.resize(self.photos[0], (112, 112))]
        self._bombs: dict[str, bytes] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="sqf-fuzz-"))
        atexit.register(shutil.rmtree, self.tmp, True)

    def bomb(self, name: str) -> bytes:
        if name not in self._bombs:
            if name == "tiff":
                self._bombs[name] = tiff_bomb(20000, 20000, 1)  # 400 MP, 390 KB
            elif name == "tiff_rgb":
                self._bombs[name] = tiff_bomb(9000, 9000, 3)  # 81 MP, 240 KB
            elif name == "jpeg_junk":
                self._bombs[name] = jpeg_junk_bomb(30000, 30000)
        return self._bombs[name]


def _pil(image: np.ndarray, mode: str | None = None) -> Any:
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image))
    return pil.convert(mode) if mode else pil


def _flip_bytes(data: bytes, rng: np.random.Generator, count: int, start: int = 0) -> bytes:
    buf = bytearray(data)
    for _ in range(count):
        i = int(rng.integers(min(start, len(buf) - 1), len(buf)))
        choice = rng.integers(3)
        if choice == 0:
            buf[i] ^= 1 << int(rng.integers(8))
        elif choice == 1:
            buf[i] = int(rng.integers(256))
        else:
            buf[i] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))
    return bytes(buf)


def _huge_dims(rng: np.random.Generator) -> tuple[int, int]:
    return tuple(  # type: ignore[return-value]
        int(rng.choice([0, 1, 6325, 6400, 30000, 65535, 100000, 2**16 + 1, 2**24, 2**31 - 1, 2**32 - 1]))
        for _ in range(2)
    )


def _header_bomb(assets: Assets, rng: np.random.Generator) -> bytes:
    """A real small file of some format whose header is patched to claim a huge (or zero) size."""
    w, h = _huge_dims(rng)
    fmt = str(
        rng.choice(["png", "jpg", "tiff", "webp", "bmp", "gif", "ppm", "pam", "hdr", "ras", "j2k", "jp2"])
    )
    if fmt not in assets.encoded:
        fmt = "png"
    data = bytearray(assets.encoded[fmt][1])
    w16, h16 = min(w, 0xFFFF), min(h, 0xFFFF)
    if fmt == "png":
        data[16:24] = struct.pack(">II", w, h)
    elif fmt == "jpg":
        sof = bytes(data).index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = struct.pack(">HH", h16, w16)
    elif fmt == "tiff":
        return (
            bytes(tiff_bomb(8, 8)[:8])
            + bytes(
                struct.pack("<H", 2) + struct.pack("<HHII", 256, 4, 1, w) + struct.pack("<HHII", 257, 4, 1, h)
            )
            + b"\x00" * 64
        )
    elif fmt == "webp":
        if data[12:16] == b"VP8L":
            data[21:25] = struct.pack("<I", ((w16 - 1) & 0x3FFF) | (((h16 - 1) & 0x3FFF) << 14))
        else:
            return (
                b"RIFF"
                + struct.pack("<I", 30)
                + b"WEBPVP8X"
                + struct.pack("<I", 10)
                + b"\x00" * 4
                + ((w - 1) % 2**24).to_bytes(3, "little")
                + ((h - 1) % 2**24).to_bytes(3, "little")
                + bytes(data[12:])
            )
    elif fmt == "bmp":
        data[18:26] = struct.pack("<ii", min(w, 2**31 - 1), min(h, 2**31 - 1))
    elif fmt == "gif":
        data[6:10] = struct.pack("<HH", w16, h16)
    elif fmt in ("ppm", "pam", "hdr"):
        text = bytes(data)
        if fmt == "ppm":
            return b"P6\n%d %d\n255\n" % (w, h) + text[text.index(b"255\n") + 4 :]
        if fmt == "pam":
            return (
                b"P7\nWIDTH %d\nHEIGHT %d\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" % (w, h)
                + text[text.index(b"ENDHDR\n") + 7 :]
            )
        end = text.index(b"\n\n") + 2
        line_end = text.index(b"\n", end)
        return text[:end] + b"-Y %d +X %d" % (h, w) + text[line_end:]
    elif fmt == "ras":
        data[4:12] = struct.pack(">II", w, h)
    elif fmt == "j2k":
        data[8:16] = struct.pack(">II", w, h)
    elif fmt == "jp2":
        at = bytes(data).find(b"ihdr")
        data[at + 4 : at + 12] = struct.pack(">II", h, w)
    return bytes(data)


_PIL_MODES = (
    "1",
    "L",
    "LA",
    "P",
    "PA",
    "RGB",
    "RGBA",
    "RGBX",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "F",
    "I;16",
)


def _wrong_dtype_array(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    kind = str(
        rng.choice(
            [
                "int64",
                "int32",
                "int8",
                "uint32",
                "uint64",
                "bool",
                "complex64",
                "complex128",
                "object",
                "str",
                "datetime64",
                "void",
                "float16",
                "longdouble",
                "uint16",
            ]
        )
    )
    if kind == "object":
        values: list[Any] = [None, 1, 2.5, "x", b"y", [1], {}]
        flat = [values[int(i)] for i in rng.integers(0, len(values), int(np.prod(shape)))]
        arr = np.empty(int(np.prod(shape)), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    if kind == "str":
        return np.full(shape, "a")
    if kind == "datetime64":
        return np.zeros(shape, dtype="datetime64[s]")
    if kind == "void":
        return np.zeros(shape, dtype="V3")
    if kind == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if kind.startswith("complex"):
        return (rng.random(shape) + 1j * rng.random(shape)).astype(kind)
    if kind in ("float16", "longdouble"):
        return rng.random(shape).astype(kind) * float(rng.choice([1.0, 255.0, -1.0]))
    info = np.iinfo(kind)
    low = max(int(info.min), -(2**40))
    high = min(int(info.max), 2**40)
    return rng.integers(low, high, shape, dtype=kind, endpoint=True)


def _odd_shape_array(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    choice = int(rng.integers(14))
    if choice == 0:
        return np.array(7, dtype=np.uint8)  # 0-D
    if choice == 1:
        return rng.integers(0, 256, int(rng.integers(0, 50)), dtype=np.uint8)  # 1-D
    if choice == 2:
        return rng.integers(0, 256, (40, 40, int(rng.choice([0, 2, 5, 6, 64]))), dtype=np.uint8)
    if choice == 3:
        return np.zeros((int(rng.integers(0, 3)), 0, 3), np.uint8)  # 0-size
    if choice == 4:
        return np.zeros((0, int(rng.integers(0, 40)), 3), np.uint8)
    if choice == 5:
        return rng.integers(0, 256, (2, 3, 4, 5, 3), dtype=np.uint8)  # 5-D
    if choice == 6:
        return photo[::-1, ::2]  # negative and doubled strides
    if choice == 7:
        return np.asfortranarray(photo)
    if choice == 8:
        view = photo.copy()
        view.setflags(write=False)
        return view
    if choice == 9:
        side = int(rng.choice([7000, 50000, 10**6]))
        return np.broadcast_to(np.uint8(128), (side, side, 3))  # zero stride, terabytes if copied
    if choice == 10:
        return np.broadcast_to(photo[:1, :1], (2000, 1500, 3))  # zero stride, within the cap
    if choice == 11:
        return photo.transpose(1, 0, 2)  # non-contiguous
    if choice == 12:
        return photo[:, :, :, None]  # 4-D: an aligned batch of the wrong shape
    return np.ascontiguousarray(photo[:, :, 0])[:, :, None]  # H x W x 1


def _real_face(rng: np.random.Generator, photo: np.ndarray) -> tuple[Any, str]:
    """A real photo scaled, turned, cut, noised, blurred or greyed; as an array, bytes or a PIL image."""
    import cv2

    img = photo
    scale = float(rng.choice([0.05, 0.2, 0.5, 1.0, 1.0, 1.5, 3.0]))
    img = cv2.resize(
        img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    if img.size == 0:
        img = photo[:1, :1]
    if rng.random() < 0.4:
        angle = float(rng.uniform(-180, 180))
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (w, h))
    if rng.random() < 0.3:
        h, w = img.shape[:2]
        y0, x0 = int(rng.integers(0, max(1, h // 2))), int(rng.integers(0, max(1, w // 2)))
        img = img[
            y0 : y0 + max(1, int(rng.integers(1, h + 1))), x0 : x0 + max(1, int(rng.integers(1, w + 1)))
        ]
    if rng.random() < 0.3:
        img = np.clip(img + rng.normal(0, float(rng.choice([5, 40, 120])), img.shape), 0, 255).astype(
            np.uint8
        )
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.choice([1, 3, 8])))
    if rng.random() < 0.2:
        img = np.ascontiguousarray(img[:, ::-1])
    form = int(rng.integers(6))
    if form == 0:
        return np.ascontiguousarray(img[:, :, ::-1]), "BGR"
    if form == 1:
        return _encode(img, "jpg"), "RGB"
    if form == 2:
        return _encode(img, "png"), "RGB"
    if form == 3:
        return _pil(img), "RGB"
    if form == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), "RGB"
    return img, "RGB"


def _exif_jpeg(rng: np.random.Generator, photo: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if rng.random() < 0.5:
        exif = Image.Exif()
        exif[0x0112] = int(rng.choice([0, 1, 3, 5, 6, 7, 8, 9, 255, 65535]))
        _pil(photo).save(buf, "JPEG", exif=exif)
        data = buf.getvalue()
        if rng.random() < 0.5:  # damage the EXIF block itself
            at = data.find(b"Exif\x00\x00")
            data = _flip_bytes(data[: at + 40], rng, int(rng.integers(1, 8)), start=at + 6) + data[at + 40 :]
        return data
    _pil(photo).save(buf, "JPEG")
    data = buf.getvalue()
    payload = b"Exif\x00\x00" + bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8))
    if rng.random() < 0.5:
        payload = (
            b"Exif\x00\x00II*\x00\x08\x00\x00\x00"
            + struct.pack("<H", 1)
            + struct.pack(
                "<HHII",
                0x0112,
                int(rng.choice([3, 4, 7])),
                int(rng.choice([1, 2**31])),
                int(rng.integers(2**32)),
            )
        )
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _path_case(rng: np.random.Generator, assets: Assets) -> Any:
    tmp = assets.tmp
    choice = int(rng.integers(11))
    if choice == 0:
        return tmp / f"missing-{int(rng.integers(1 << 30))}.jpg"
    if choice == 1:
        return str(tmp)
    if choice == 2:
        return "/dev/zero" if os.path.exists("/dev/zero") else str(tmp)
    if choice == 3:
        fifo = tmp / "fifo"
        if not fifo.exists() and hasattr(os, "mkfifo"):
            os.mkfifo(fifo)
        return fifo
    if choice == 4:
        return "bad\x00name.jpg"
    if choice == 5:
        return "x" * int(rng.choice([255, 300, 5000])) + ".png"
    if choice == 6:
        empty = tmp / "empty.jpg"
        empty.write_bytes(b"")
        return empty
    if choice == 7:
        loop = tmp / "loop.jpg"
        if not loop.is_symlink():
            loop.symlink_to(loop)
        return loop
    if choice == 8:
        return b"/not/a/str/path.jpg"  # bytes: taken as encoded image data
    fmt = str(rng.choice(list(assets.encoded)))
    data = _flip_bytes(assets.encoded[fmt][1], rng, int(rng.integers(0, 20)))
    path = tmp / f"case.{fmt}"
    path.write_bytes(data)
    return path if choice == 9 else str(path)


def _odd_source(rng: np.random.Generator, assets: Assets) -> Any:
    choice = int(rng.integers(9))
    if choice == 0:
        return None
    if choice == 1:
        return int(rng.integers(-5, 5))
    if choice == 2:
        return assets.photos[0][:4, :4].tolist()
    if choice == 3:
        return {"image": "x"}
    if choice == 4:
        return memoryview(rng.random((8, 8)).data)  # non-byte memoryview
    if choice == 5:
        return bytearray(assets.encoded["jpg"][1])
    if choice == 6:
        return memoryview(assets.encoded["png"][1])[:: int(rng.choice([1, 2]))]
    if choice == 7:
        return 3.5
    return object()


@dataclass
class Draw:
    """What every recipe starts from. `build_case` draws the photo and the channel order from the case's
    generator first, in that order, before the recipe draws anything: a seed gives the case it always gave."""

    rng: np.random.Generator
    photo: np.ndarray
    order: str
    assets: Assets


Case = tuple[str, Any, str]
"""(operation, input, channel order): "image" (anything `embed` takes as an image), "aligned" (a batch for
`embed` as aligned faces) or "selftest" (a harness self-check, not an input)."""

_MAGIC_PREFIXES = (
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"II*\x00",
    b"GIF89a",
    b"BM",
    b"P6\n",
    b"#?RADIANCE\n",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",
    b"\xffO\xffQ",
    b"\x00\x00\x00\x18ftypavif",
)
"""Random bytes start with nothing or with a real format's magic number, so each decoder sees junk."""


def _random_bytes(d: Draw) -> Case:
    n = int(d.rng.choice([0, 1, 2, 8, 64, 512, 4096]))
    prefix = _MAGIC_PREFIXES[int(d.rng.integers(12))]
    return "image", prefix + bytes(d.rng.integers(0, 256, n, dtype=np.uint8)), d.order


def _encoded(d: Draw) -> bytes:
    """One of the assets' encodings (a format, then the full-size or the small photo)."""
    fmt = str(d.rng.choice(list(d.assets.encoded)))
    return d.assets.encoded[fmt][int(d.rng.integers(2))]


def _truncated(d: Draw) -> Case:
    data = _encoded(d)
    return "image", data[: int(d.rng.integers(0, len(data)))], d.order


def _bitflip(d: Draw) -> Case:
    data = _encoded(d)
    count = int(d.rng.choice([1, 2, 4, 16, 64]))
    start = 0 if d.rng.random() < 0.5 else min(64, len(data) // 2)
    return "image", _flip_bytes(data, d.rng, count, start=start), d.order


def _header_bomb_case(d: Draw) -> Case:
    return "image", _header_bomb(d.assets, d.rng), d.order


def _compressed_bomb(d: Draw) -> Case:
    return "image", d.assets.bomb(str(d.rng.choice(["tiff", "tiff_rgb", "jpeg_junk"]))), d.order


def _png16(d: Draw) -> Case:
    import cv2

    channels = int(d.rng.choice([1, 3, 4]))
    base = d.photo if channels != 1 else d.photo[:, :, 0]
    if d.rng.random() < 0.5:
        img = base.astype(np.uint16) * 257
    else:
        img = d.rng.integers(0, 65536, base.shape, dtype=np.uint16)
    if channels == 4:
        img = np.dstack([img, np.full(img.shape[:2], 65535, np.uint16)])
    return "image", cv2.imencode(".png", img)[1].tobytes(), d.order


def _cmyk_jpeg(d: Draw) -> Case:
    cmyk = _pil(d.photo, "CMYK")
    if d.rng.random() < 0.3:
        return "image", cmyk, d.order
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=int(d.rng.integers(5, 100)))
    return "image", buf.getvalue(), d.order


def _palette(d: Draw) -> Case:
    from PIL import Image

    pal = _pil(d.photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=int(d.rng.integers(2, 257)))
    form = int(d.rng.integers(3))
    if form == 0:
        return "image", pal, d.order
    buf = io.BytesIO()
    pal.save(buf, "PNG" if form == 1 else "GIF", transparency=int(d.rng.integers(0, 2)))
    return "image", buf.getvalue(), d.order


def _exif(d: Draw) -> Case:
    return "image", _exif_jpeg(d.rng, d.photo), d.order


_EXTREME_SIZES = ((1, 1), (1, 100000), (100000, 1), (2, 2), (3, 50000), (1, 3), (100000, 3))


def _extreme_shape(d: Draw) -> Case:
    h, w = _EXTREME_SIZES[int(d.rng.integers(7))]
    channels = int(d.rng.choice([0, 1, 3, 4]))
    arr = d.rng.integers(0, 256, (h, w) if channels == 0 else (h, w, channels), dtype=np.uint8)
    if d.rng.random() < 0.4:
        import cv2

        return "image", cv2.imencode(".png", arr)[1].tobytes(), d.order
    return "image", arr, d.order


def _float_array(d: Draw) -> Case:
    rng = d.rng
    arr = d.photo.astype(str(rng.choice(["float32", "float64", "float16"]))) / 255.0
    special = int(rng.integers(6))
    if special == 1:
        arr.flat[int(rng.integers(arr.size))] = np.nan
    elif special == 2:
        arr.flat[int(rng.integers(arr.size))] = np.inf * float(rng.choice([1, -1]))
    elif special == 3:
        arr = arr * float(rng.choice([255.0, -1.0, 1.0001, 1e30]))
    elif special == 4:
        arr = np.full(arr.shape, np.nan, arr.dtype)
    return "image", arr, d.order


def _wrong_dtype(d: Draw) -> Case:
    shape = [(20, 20, 3), (20, 20), (5, 5, 4), (1, 112, 112, 3)][int(d.rng.integers(4))]
    arr = _wrong_dtype_array(d.rng, shape)
    return ("aligned" if arr.ndim == 4 else "image"), arr, d.order


def _wrong_shape(d: Draw) -> Case:
    arr = _odd_shape_array(d.rng, d.photo)
    return ("aligned" if arr.ndim == 4 else "image"), arr, d.order


def _aligned_variant(rng: np.random.Generator, batch: np.ndarray, n: int) -> np.ndarray:
    """A batch of `n` aligned faces spoiled one of ten ways (0: left as it is)."""
    variant = int(rng.integers(10))
    if variant == 1 and n:
        return np.clip(batch + rng.normal(0, 60, batch.shape), 0, 255).astype(np.uint8)
    if variant == 2:
        return batch.astype(str(rng.choice(["float32", "float64", "int64", "bool", "uint16", "int8"])))
    if variant == 3:
        return batch[:, : int(rng.integers(0, 112))]
    if variant == 4:
        return np.concatenate([batch, batch[..., :1]], axis=-1)
    if variant == 5 and n:
        batch = batch.astype(np.float32)
        batch.flat[0] = np.nan
        return batch
    if variant == 6:
        value = 0 if rng.random() < 0.5 else 255
        return np.full((n, 112, 112, 3), value, np.uint8)
    if variant == 7:
        return batch.transpose(0, 2, 1, 3)  # non-contiguous
    if variant == 8:
        return rng.integers(0, 256, (max(n, 1), 112, 112, 3), dtype=np.uint8)
    if variant == 9:
        return batch[..., ::-1]
    return batch


def _aligned(d: Draw) -> Case:
    face = d.assets.aligned[int(d.rng.integers(len(d.assets.aligned)))]
    n = int(d.rng.choice([0, 1, 2, 3, 65, 130]))
    batch = np.stack([face] * n) if n else np.zeros((0, 112, 112, 3), np.uint8)
    return "aligned", _aligned_variant(d.rng, batch, n), d.order


def _pil_mode(d: Draw) -> Case:
    from PIL import Image

    rng = d.rng
    mode = str(rng.choice(_PIL_MODES))
    base = d.photo if rng.random() < 0.8 else d.photo[:1, :1]
    if mode == "F":
        values = rng.random(base.shape[:2]).astype(np.float32) * float(rng.choice([1.0, 255.0, -1.0]))
        if rng.random() < 0.3:
            values.flat[0] = np.nan
        return "image", Image.fromarray(values, mode="F"), d.order
    if mode == "I" and rng.random() < 0.5:
        values = rng.integers(-(2**31), 2**31 - 1, base.shape[:2], dtype=np.int64).astype(np.int32)
        return "image", Image.fromarray(values, mode="I"), d.order
    if mode == "I;16":
        pil = Image.new("I;16", (base.shape[1], base.shape[0]))
        pil.frombytes(rng.integers(0, 65536, base.shape[:2], dtype="<u2").tobytes())
        return "image", pil, d.order
    return "image", _pil(base, mode), d.order


def _pil_lazy(d: Draw) -> Case:
    from PIL import Image

    rng = d.rng
    fmt = str(rng.choice([f for f in ("jpg", "png", "gif", "tiff", "webp", "bmp") if f in d.assets.encoded]))
    data = d.assets.encoded[fmt][int(rng.integers(2))]
    if rng.random() < 0.5:
        data = data[: int(rng.integers(len(data) // 2, len(data)))]
    else:
        data = _flip_bytes(data, rng, int(rng.integers(1, 30)), start=min(40, len(data) // 2))
    try:
        return "image", Image.open(io.BytesIO(data)), d.order  # decoded lazily, inside load_image
    except Exception:  # PIL refuses at open: that is the caller's code, not the SDK's; use the bytes
        return "image", data, d.order


def _path(d: Draw) -> Case:
    return "image", _path_case(d.rng, d.assets), d.order


def _odd_source_case(d: Draw) -> Case:
    return "image", _odd_source(d.rng, d.assets), d.order


def _real_face_case(d: Draw) -> Case:
    source, order = _real_face(d.rng, d.photo)  # the recipe picks its own channel order
    return "image", source, order


RECIPES: dict[str, Callable[[Draw], Case]] = {
    "random_bytes": _random_bytes,
    "truncated": _truncated,
    "bitflip": _bitflip,
    "header_bomb": _header_bomb_case,
    "compressed_bomb": _compressed_bomb,
    "png16": _png16,
    "cmyk_jpeg": _cmyk_jpeg,
    "palette": _palette,
    "exif": _exif,
    "extreme_shape": _extreme_shape,
    "float_array": _float_array,
    "wrong_dtype": _wrong_dtype,
    "wrong_shape": _wrong_shape,
    "aligned": _aligned,
    "pil_mode": _pil_mode,
    "pil_lazy": _pil_lazy,
    "path": _path,
    "odd_source": _odd_source_case,
    "real_face": _real_face_case,
}
"""Fuzz kind -> its recipe: a small function from the case's `Draw` to the case."""


def build_case(recipe: dict[str, Any], assets: Assets) -> Case:
    """(operation, input, channel order) for a recipe {"kind", "seed"}, deterministically (see `Case`)."""
    kind, rng = recipe["kind"], np.random.default_rng(int(recipe["seed"]))
    photo = assets.photos[int(rng.integers(len(assets.photos)))]
    order = "BGR" if rng.random() < 0.2 else "RGB"
    if kind in SELFTEST_KINDS:
        return "selftest", kind, order
    if kind not in RECIPES:
        raise ValueError(f"unknown fuzz kind {kind!r}")
    return RECIPES[kind](Draw(rng, photo, order, assets))


FUZZ_KINDS: dict[str, int] = {
    "random_bytes": 8,
    "truncated": 10,
    "bitflip": 14,
    "header_bomb": 8,
    "compressed_bomb": 2,
    "png16": 4,
    "cmyk_jpeg": 4,
    "palette": 4,
    "exif": 5,
    "extreme_shape": 6,
    "float_array": 5,
    "wrong_dtype": 5,
    "wrong_shape": 6,
    "aligned": 6,
    "pil_mode": 6,
    "pil_lazy": 5,
    "path": 3,
    "odd_source": 3,
    "real_face": 10,
}
"""Fuzz kinds and their weights in a run (the same kinds as `RECIPES`)."""


def recipes(count: int, seed: int, selftest: bool = False) -> list[dict[str, Any]]:
    """`count` recipes drawn by weight (seeded), plus one of each self-test kind with `selftest`."""
    rng = random.Random(seed)
    kinds, weights = list(FUZZ_KINDS), list(FUZZ_KINDS.values())
    out = [{"kind": k, "seed": rng.getrandbits(32)} for k in rng.choices(kinds, weights, k=count)]
    if selftest:
        for k in SELFTEST_KINDS:
            out.insert(rng.randrange(len(out) + 1), {"kind": k, "seed": 0})
    return out


# ------------------------------------------------------------------------------------------------ cases


def _check_embeddings(out: Any, rows: int | None, size: int) -> str | None:
    """Why an embedding output is wrong, or None."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        return f"output is {type(out).__name__} {getattr(out, 'dtype', '')}, not float32"
    want = (size,) if rows is None else (rows, size)
    if out.shape != want:
        return f"output shape {out.shape}, expected {want}"
    if not np.isfinite(out).all():
        return "output holds NaN or infinity"
    if out.size and not np.allclose(np.linalg.norm(out.reshape(-1, size), axis=1), 1.0, atol=1e-3):
        return "output rows are not unit vectors"
    return None


class BadOutput(Exception):
    """An SDK call returned without error but with a wrong result (counted as a crash)."""


def run_case(verifier: Any, op: str, source: Any, order: str) -> str:
    """Run one fuzz input through the runtime; returns "ok" or the typed error's class name. Any other
    exception propagates (a crash); a wrong output raises BadOutput."""
    from squeezerface.errors import LowQualityError, MultipleFacesError, SqueezerfaceError

    size = verifier.embedder.embedding_size
    try:
        if op == "aligned":
            n = len(source) if getattr(source, "ndim", 0) == 4 else 1  # a 3-D array is one photo
            why = _check_embeddings(verifier.embed(source), n, size)
            if why:
                raise BadOutput(why)
            return "ok"
        outcome = "ok"
        try:
            why = _check_embeddings(verifier.embed_one(source, "fuzz", channel_order=order), None, size)
            if why:
                raise BadOutput(why)
        except (MultipleFacesError, LowQualityError) as exc:
            outcome = type(exc).__name__  # there are faces: the detect/align path below runs too
        faces = verifier.detect(source, channel_order=order)
        if faces:
            crop = verifier.align(source, faces[0], channel_order=order)
            if crop.shape != (112, 112, 3) or crop.dtype != np.uint8:
                raise BadOutput(f"aligned crop {crop.shape} {crop.dtype}")
            why = _check_embeddings(
                verifier.embed(source, faces=faces[:3], channel_order=order), min(3, len(faces)), size
            )
            if why:
                raise BadOutput(why)
        return outcome
    except SqueezerfaceError as exc:
        return type(exc).__name__


def _selftest(kind: str, rss_cap_mb: float) -> str:
    if kind == "selftest_raise":
        raise RuntimeError("self-test: an untyped exception")
    if kind == "selftest_hang":
        time.sleep(3600)
    if kind == "selftest_segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "selftest_alloc":
        block = np.ones(int((rss_cap_mb + 256) * 2**20) // 8)  # past the cap, touched
        return str(block.sum())
    return "ok"


def _peak_rss_mb() -> float:
    """This worker's own peak RSS (VmHWM: ru_maxrss would carry over the spawning parent's peak)."""
    return peak_rss_mb() or 0.0


def _fuzz_worker(conn: Connection, lfw: str | None, address_space_mb: int, rss_cap_mb: float) -> None:
    """A worker process: one FaceVerifier, then cases from the pipe until None."""
    if address_space_mb > 0:
        limit = address_space_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    import cv2

    cv2.setNumThreads(1)
    from squeezerface.verify import FaceVerifier

    verifier = FaceVerifier(threads=1)
    assets = Assets(Path(lfw) if lfw else None, verifier)
    conn.send({"ready": True, "rss_mb": _peak_rss_mb(), "tmp": str(assets.tmp)})
    while True:
        recipe = conn.recv()
        if recipe is None:
            break
        started = time.perf_counter()
        result: dict[str, Any] = {}
        try:
            op, source, order = build_case(recipe, assets)
        except Exception as exc:  # the harness's own failure to make an input: reported, not counted
            result = {"outcome": "unbuildable", "error": f"{type(exc).__name__}: {exc}"}
        else:
            try:
                if op == "selftest":
                    result = {"outcome": _selftest(source, rss_cap_mb)}
                else:
                    result = {"outcome": run_case(verifier, op, source, order)}
            except BadOutput as exc:
                result = {"outcome": "crash", "error": f"BadOutput: {exc}"}
            except BaseException as exc:
                tb = traceback.format_exc(limit=6)
                result = {
                    "outcome": "crash",
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "traceback": tb[-2000:],
                }
        result["seconds"] = time.perf_counter() - started
        result["rss_mb"] = _peak_rss_mb()
        conn.send(result)
    shutil.rmtree(assets.tmp, ignore_errors=True)


def _runqueue_wait_s(pid: int | None) -> float | None:
    """Seconds process `pid`'s main thread has spent runnable but not running (Linux
    /proc/PID/schedstat, second field, in ns); None where that is not available."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class _Worker:
    def __init__(self, ctx: Any, lfw: str | None, address_space_mb: int, rss_cap_mb: float) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_fuzz_worker, args=(child, lfw, address_space_mb, rss_cap_mb), daemon=True
        )
        self.process.start()
        child.close()
        if not self.conn.poll(300):
            self.kill()
            raise RuntimeError("a fuzz worker did not start")
        hello = self.conn.recv()
        self.rss_mb = float(hello["rss_mb"])
        self.tmp = Path(hello["tmp"])
        self.case: tuple[int, dict[str, Any]] | None = None
        self._sent = 0.0
        self._waited: float | None = None

    def send(self, index: int, recipe: dict[str, Any]) -> None:
        self.case = (index, recipe)
        self._sent = time.monotonic()
        self._waited = _runqueue_wait_s(self.process.pid)
        self.conn.send(recipe)

    @property
    def started(self) -> float:
        """When the current case started, moved later by the time the worker has since spent runnable but
        waiting for a CPU, so that `now - started` (what the watchdog compares with `case_timeout`) counts
        only time the case could have used. Why: on a loaded machine a case that needs one CPU-second can
        take a minute of wall time (a 1 GB allocation was called a "hang" under 4 s and then 60 s budgets);
        a real hang still reaches the budget, whether it spins (time on a CPU) or blocks (time asleep
        counts too). Where the kernel gives no scheduler statistics, plain wall time."""
        waited = _runqueue_wait_s(self.process.pid)
        if waited is None or self._waited is None:
            return self._sent
        return self._sent + max(0.0, waited - self._waited)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.conn.close()
        shutil.rmtree(self.tmp, ignore_errors=True)  # a killed worker cannot clean up after itself

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(10)
        self.kill()


FAILURES = ("crash", "died", "hang", "memory_over_cap")
"""Outcomes that fail the run: an untyped exception or wrong output, a dead worker, a hang, memory."""


@dataclass
class _Tally:
    """Outcome counts of a fuzz run, per kind, every failure with its recipe, and the progress line."""

    total: int
    progress: Callable[[str], None] | None
    every: int
    started: float = field(default_factory=time.monotonic)
    outcomes: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    peak: float = 0.0

    def record(self, recipe: dict[str, Any], outcome: str, extra: dict[str, Any]) -> None:
        self.outcomes[outcome] += 1
        self.by_kind.setdefault(recipe["kind"], Counter())[outcome] += 1
        if outcome in FAILURES:
            self.failures.append({"recipe": recipe, "outcome": outcome, **extra})
        done = sum(self.outcomes.values())
        if self.progress and done % self.every == 0:
            o = self.outcomes
            rate = done / max(time.monotonic() - self.started, 1e-9)
            self.progress(
                f"fuzz {done:,}/{self.total:,}: {o['crash'] + o['died']} crashes, "
                f"{o['hang']} hangs, {o['memory_over_cap']} over the memory cap, "
                f"{o['ok']:,} accepted, {rate:.1f} cases/s"
            )

    def summary(self, rss_cap_mb: float, case_timeout: float) -> dict[str, Any]:
        o = self.outcomes
        typed = sum(n for k, n in o.items() if k not in (*FAILURES, "ok", "unbuildable"))
        return {
            "fuzz_cases": self.total,
            "accepted": o["ok"],
            "typed_errors": typed,
            "crashes": o["crash"] + o["died"],
            "hangs": o["hang"],
            "memory_over_cap": o["memory_over_cap"],
            "unbuildable": o["unbuildable"],
            "outcomes": dict(sorted(o.items())),
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(self.by_kind.items())},
            "peak_worker_rss_mb": round(self.peak, 1),
            "rss_cap_mb": rss_cap_mb,
            "case_timeout_s": case_timeout,
            "failures": self.failures,
            "seconds": round(time.monotonic() - self.started, 1),
        }


def _receive(worker: _Worker, recipe: dict[str, Any], rss_cap_mb: float, tally: _Tally) -> bool:
    """Record the answer of a worker that has one; True when the worker must be replaced (it died, or
    this case took its peak RSS past the cap)."""
    try:
        result = worker.conn.recv()
    except (EOFError, OSError):  # the worker died (a segfault, the OOM killer, ...)
        worker.process.join(5)
        tally.record(recipe, "died", {"exitcode": worker.process.exitcode})
        return True
    outcome = result.pop("outcome")
    rss = float(result.pop("rss_mb", 0.0))
    tally.peak = max(tally.peak, rss)
    restart = False
    if rss > rss_cap_mb:
        result.update(rss_mb=rss, outcome_before=outcome)
        outcome, restart = "memory_over_cap", True
    tally.record(recipe, outcome, result if outcome in FAILURES or outcome == "unbuildable" else {})
    return restart


def run_fuzz(
    cases: list[dict[str, Any]],
    *,
    workers: int = 2,
    lfw: Path | None = None,
    case_timeout: float = 30.0,
    rss_cap_mb: float = 1536.0,
    address_space_mb: int = 8192,
    progress: Callable[[str], None] | None = None,
    every: int = 500,
) -> dict[str, Any]:
    """Run recipes through worker processes with a watchdog; counts and every failure with its recipe."""
    tally = _Tally(len(cases), progress, every)
    ctx = mp.get_context("spawn")
    lfw_arg = str(lfw) if lfw is not None and (lfw / "images").is_dir() else None

    def new_worker() -> _Worker:
        return _Worker(ctx, lfw_arg, address_space_mb, rss_cap_mb)

    pool = [new_worker() for _ in range(min(max(1, workers), len(cases)) if cases else 0)]
    pending = list(enumerate(cases))[::-1]
    try:
        for worker in pool:
            if pending:
                worker.send(*pending.pop())
        while any(w.case is not None for w in pool):
            ready = wait([w.conn for w in pool if w.case is not None], timeout=0.2)
            for i, worker in enumerate(pool):
                if worker.case is None:
                    continue
                _, recipe = worker.case
                if worker.conn in ready:
                    restart = _receive(worker, recipe, rss_cap_mb, tally)
                elif time.monotonic() - worker.started > case_timeout:
                    tally.record(recipe, "hang", {"seconds": case_timeout})
                    restart = True
                else:
                    continue
                worker.case = None
                if restart:
                    worker.kill()
                    pool[i] = worker = new_worker()
                if pending:
                    worker.send(*pending.pop())
    finally:
        for worker in pool:
            worker.stop()
    return tally.summary(rss_cap_mb, case_timeout)


def replay(recipe: dict[str, Any], lfw: Path | None) -> str:
    """Run one recipe in this process (tracebacks show) and return its outcome."""
    from squeezerface.verify import FaceVerifier

    verifier = FaceVerifier(threads=1)
    assets = Assets(lfw if lfw is not None and (lfw / "images").is_dir() else None, verifier)
    op, source, order = build_case(recipe, assets)
    if op == "selftest":
        return _selftest(source, 1536.0)
    return run_case(verifier, op, source, order)
