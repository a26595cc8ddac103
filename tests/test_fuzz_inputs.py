"""Fuzzed inputs through decode -> detect -> align -> embed give an embedding or a typed error, never anything
else (a CI-sized sample of `benchmarks/reliability.py`), and regression tests for what fuzzing found in
`load_image`: decompression bombs in formats whose size was only checked after decoding, a JPEG whose stray
bytes hid its frame size from the header check, and paths with NUL bytes."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from squeezerface import imageio
from squeezerface.bench import fuzz  # the fuzz recipes of benchmarks/reliability.py
from squeezerface.errors import ImageDecodeError, SqueezerfaceError
from squeezerface.imageio import load_image
from squeezerface.verify import FaceVerifier

SAMPLE = settings(
    max_examples=160,
    deadline=None,
    database=None,
    derandomize=True,  # the same sample on every CI run; the benchmark explores with seeds
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def runtime() -> tuple[FaceVerifier, fuzz.Assets]:
    verifier = FaceVerifier(threads=1)
    return verifier, fuzz.Assets(fuzz.DEFAULT_LFW, verifier)


@SAMPLE
@given(kind=st.sampled_from(sorted(fuzz.FUZZ_KINDS)), seed=st.integers(0, 2**32 - 1))
def test_fuzzed_inputs_give_embeddings_or_typed_errors(
    runtime: tuple[FaceVerifier, fuzz.Assets], kind: str, seed: int
) -> None:
    verifier, assets = runtime
    op, source, order = fuzz.build_case({"kind": kind, "seed": seed}, assets)
    # run_case returns "ok" or a SqueezerfaceError's class name; anything else raises and fails the test
    outcome = fuzz.run_case(verifier, op, source, order)
    assert outcome == "ok" or outcome.endswith("Error"), outcome


_PREFIXES = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"II*\x00",
    b"MM\x00*",
]
_PREFIXES += [
    b"GIF89a",
    b"BM",
    b"P6\n",
    b"P7\n",
    b"PF\n",
    b"#?RADIANCE\n\n",
    b"\x59\xa6\x6a\x95",
    b"\xffO\xffQ",
]
_PREFIXES += [b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\x00\x00\x00\x18ftypavif"]


@settings(max_examples=120, deadline=None, database=None, derandomize=True)
@given(prefix=st.sampled_from(_PREFIXES), body=st.binary(max_size=600))
def test_random_bytes_after_any_signature(
    runtime: tuple[FaceVerifier, fuzz.Assets], prefix: bytes, body: bytes
) -> None:
    verifier, _ = runtime
    with contextlib.suppress(SqueezerfaceError):
        verifier.embed(prefix + body)


_DTYPES = st.sampled_from(
    [np.uint8, np.uint16, np.float32, np.float64, np.float16, np.int64, np.int8, np.bool_, np.complex64]
)


@settings(max_examples=120, deadline=None, database=None, derandomize=True)
@given(array=hnp.arrays(_DTYPES, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=7)))
def test_arrays_of_any_dtype_and_shape(
    runtime: tuple[FaceVerifier, fuzz.Assets], array: np.ndarray
) -> None:
    verifier, _ = runtime
    try:
        out = verifier.embed(array)
    except SqueezerfaceError:
        return
    assert np.isfinite(out).all()


# ------------------------------------------------------------------------------- what fuzzing found


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if OpenCV is asked to decode: the input must be refused from its header alone."""

    def refuse(*args: object) -> None:
        raise AssertionError("decoded although the header should have refused it")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def test_compressed_tiff_bomb_is_refused_before_decoding(no_decoding: None) -> None:
    # 144 MB of pixels in 140 KB: OpenCV allocated and filled them before the cap was checked
    bomb = fuzz.tiff_bomb(12000, 12000)
    assert len(bomb) < 150_000
    with pytest.raises(ImageDecodeError, match="12000 x 12000 = 144,000,000 pixels, over the cap"):
        load_image(bomb)


def test_jpeg_with_stray_bytes_before_its_frame_is_refused(no_decoding: None) -> None:
    # libjpeg skips the stray bytes and decodes a 30000 x 30000 frame from 340 bytes; the header walk
    # stopped at them, so the size went unchecked
    with pytest.raises(ImageDecodeError, match="JPEG header does not give the image size"):
        load_image(fuzz.jpeg_junk_bomb(30000, 30000))


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (
            b"II*\x00\x08\x00\x00\x00\x02\x00"
            + struct.pack("<HHII", 256, 4, 1, 90000)
            + struct.pack("<HHII", 257, 3, 1, 900),
            "90000 x 900",
        ),
        (
            b"MM\x00*\x00\x00\x00\x08\x00\x02"
            + struct.pack(">HHII", 256, 4, 1, 9000)
            + struct.pack(">HHIHH", 257, 3, 1, 9000, 0),
            "9000 x 9000",
        ),
        (
            b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
            + (9999).to_bytes(3, "little") * 2,
            "10000 x 10000",
        ),
        (b"BM" + bytes(12) + struct.pack("<Iii", 40, 9000, -9000), "9000 x 9000"),
        (b"GIF89a" + struct.pack("<HH", 65535, 65535), "65535 x 65535"),
        (b"P6\n# a comment\n20000 20000\n255\n", "20000 x 20000"),
        (b"P7\nWIDTH 8000\nHEIGHT 8000\nDEPTH 3\nMAXVAL 255\nENDHDR\n", "8000 x 8000"),
        (b"PF\n9000 9000\n-1\n", "9000 x 9000"),
        (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 9000 +X 8000\n", "8000 x 9000"),
        (b"\x59\xa6\x6a\x95" + struct.pack(">II", 9000, 9000) + bytes(20), "9000 x 9000"),
        (b"\xffO\xffQ\x00/\x00\x00" + struct.pack(">II", 9000, 9000) + bytes(20), "9000 x 9000"),
        (
            b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x16ihdr" + struct.pack(">II", 9000, 9000),
            "9000 x 9000",
        ),
        (
            b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x14ispe\x00\x00\x00\x00" + struct.pack(">II", 9000, 9000),
            "9000 x 9000",
        ),
    ],
)
def test_every_format_is_size_checked_before_decoding(data: bytes, size: str, no_decoding: None) -> None:
    with pytest.raises(ImageDecodeError, match=f"image is {size} ="):
        load_image(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x76\x2f\x31\x01" + bytes(100),
        b"\x00" * 64,
        b"II*\x00\xff\xff\xff\x7f",
        b"BM",
        b"GIF89a\x01",
        b"P6\nx y\n",
    ],
)
def test_unknown_formats_and_unreadable_headers_are_not_decoded(data: bytes, no_decoding: None) -> None:
    with pytest.raises(ImageDecodeError, match=r"not a decodable image \("):
        load_image(data)


def test_header_sizes_match_the_decoded_images_and_prefixes_never_raise() -> None:
    assets = fuzz.Assets(None)
    assert {"webp", "tiff", "bmp", "gif", "ppm", "pam", "hdr", "ras", "jp2", "j2k"} <= set(assets.encoded)
    for fmt, (_, small) in assets.encoded.items():
        decoded = load_image(small)
        if fmt not in ("jpg", "png"):
            kind, size = imageio._other_format_size(small)
            assert kind is not None and size == (decoded.shape[1], decoded.shape[0]), fmt
        for end in range(0, min(len(small), 400)):  # every cut of the header: a size, None, never a raise
            imageio._other_format_size(small[:end])
            imageio.image_size_from_header(small[:end])


def test_a_path_with_a_nul_byte_is_a_typed_error() -> None:
    with pytest.raises(ImageDecodeError, match="not a valid path"):
        load_image("photo\x00.jpg")
    with pytest.raises(ImageDecodeError, match="not a valid path"):
        load_image(Path("photo\x00.jpg"))
