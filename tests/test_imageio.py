import hashlib
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from squeezerface.errors import ImageDecodeError, SqueezerfaceError
from squeezerface.imageio import image_size_from_header, load_image, sha256_bytes, sha256_file


def _encode(ext: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def _two_tone_bgr(h: int = 20, w: int = 40) -> np.ndarray:
    """Left half red, right half blue (in BGR order, as cv2 writes it)."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (0, 0, 255)
    image[:, w // 2 :] = (255, 0, 0)
    return image


def _exif_app1(orientation: int) -> bytes:
    """A minimal APP1 Exif segment: little-endian TIFF header, one IFD with the Orientation tag (0x0112)."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _assert_rgb_u8(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (*shape, 3)
    assert image.flags.c_contiguous


# ---------------------------------------------------------------------------------------- sources


def test_path_str_and_pathlike_give_rgb(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), _two_tone_bgr())
    for source in (path, str(path)):
        image = load_image(source)
        _assert_rgb_u8(image, (20, 40))
        assert tuple(image[0, 0]) == (255, 0, 0)  # red on the left, as RGB
        assert tuple(image[0, -1]) == (0, 0, 255)


def test_bytes_bytearray_memoryview(tmp_path: Path) -> None:
    data = _encode(".png", _two_tone_bgr())
    results = [load_image(src) for src in (data, bytearray(data), memoryview(data))]
    for image in results:
        _assert_rgb_u8(image, (20, 40))
        np.testing.assert_array_equal(image, results[0])
    assert tuple(results[0][5, 5]) == (255, 0, 0)


def test_jpeg_bytes_decode_to_rgb() -> None:
    image = load_image(_encode(".jpg", _two_tone_bgr(), (cv2.IMWRITE_JPEG_QUALITY, 95)))
    _assert_rgb_u8(image, (20, 40))
    r, g, b = (int(v) for v in image[10, 5])
    assert r > 200 and g < 50 and b < 50


def test_uint8_arrays_of_each_shape() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    out = load_image(rgb)
    np.testing.assert_array_equal(out, rgb)
    assert not np.shares_memory(out, rgb)  # never aliases the caller's array

    grey = rgb[:, :, 0]
    for source in (grey, grey[:, :, None]):
        out = load_image(source)
        _assert_rgb_u8(out, (6, 7))
        assert all(np.array_equal(out[:, :, c], grey) for c in range(3))

    rgba = np.dstack([rgb, np.full((6, 7), 9, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), rgb)


def test_non_contiguous_array_comes_back_contiguous() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    view = rgb[::2, ::-1]
    out = load_image(view)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


def test_uint16_and_float_arrays_are_scaled() -> None:
    values = np.array([[0, 1, 128, 255]], np.uint8)
    np.testing.assert_array_equal(load_image(values.astype(np.uint16) * 257)[:, :, 0], values)
    np.testing.assert_array_equal(load_image((values.astype(np.uint16) << 8) | 0xFF)[:, :, 0], values)
    for dtype in (np.float16, np.float32, np.float64):
        np.testing.assert_array_equal(load_image(values.astype(dtype) / 255)[:, :, 1], values)


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.zeros((4, 4, 3), np.int32), "unsupported dtype"),
        (np.zeros((4, 4), bool), "unsupported dtype"),
        (np.zeros((4, 4, 3), np.int8), "unsupported dtype"),
        (np.zeros((4, 4, 2), np.uint8), "unsupported array shape"),
        (np.zeros((4, 4, 5), np.uint8), "unsupported array shape"),
        (np.zeros(16, np.uint8), "unsupported array shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "unsupported array shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty image"),
        (np.full((4, 4), 1.5, np.float32), "must lie in [0, 1]"),
        (np.full((4, 4), -0.1, np.float64), "must lie in [0, 1]"),
        (np.full((4, 4), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_arrays(array: np.ndarray, reason: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        load_image(array)
    assert reason in info.value.reason
    assert "array" in info.value.source


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageDecodeError, match="unsupported source type"):
        load_image([[1, 2], [3, 4]])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- decoding


def test_exif_orientation_is_applied() -> None:
    jpeg = _encode(".jpg", _two_tone_bgr(20, 40), (cv2.IMWRITE_JPEG_QUALITY, 95))
    assert load_image(jpeg).shape == (20, 40, 3)
    rotated = jpeg[:2] + _exif_app1(6) + jpeg[2:]  # 6: rotate 90 degrees clockwise to display
    image = load_image(rotated)
    _assert_rgb_u8(image, (40, 20))
    # Clockwise rotation moves the left (red) half to the top, the right (blue) half to the bottom.
    top, bottom = image[5, 10].astype(int), image[-5, 10].astype(int)
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50
    assert load_image(jpeg[:2] + _exif_app1(1) + jpeg[2:]).shape == (20, 40, 3)


def test_exif_orientation_applied_from_file(tmp_path: Path) -> None:
    jpeg = _encode(".jpg", _two_tone_bgr(20, 40))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg[:2] + _exif_app1(8) + jpeg[2:])  # 8: rotate 90 degrees counter-clockwise
    image = load_image(path)
    assert image.shape == (40, 20, 3)
    assert image[-5, 10, 0] > 200  # left (red) half ends up at the bottom


def test_greyscale_png(tmp_path: Path) -> None:
    grey = np.arange(30 * 20, dtype=np.uint32).reshape(30, 20).astype(np.uint8)
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), grey)
    image = load_image(path)
    _assert_rgb_u8(image, (30, 20))
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], grey)


def test_16bit_png_colour_and_grey() -> None:
    bgr = _two_tone_bgr().astype(np.uint16) * 257
    bgr[0, 0] = (0x1234, 0x5678, 0x9ABC)
    image = load_image(_encode(".png", bgr))
    _assert_rgb_u8(image, (20, 40))
    assert tuple(image[0, 0]) == (0x9A, 0x56, 0x12)
    assert tuple(image[5, 5]) == (255, 0, 0)
    grey = np.full((5, 6), 0xAB01, np.uint16)
    np.testing.assert_array_equal(load_image(_encode(".png", grey)), np.full((5, 6, 3), 0xAB, np.uint8))


def test_rgba_png_drops_alpha(tmp_path: Path) -> None:
    bgra = np.dstack([_two_tone_bgr(), np.zeros((20, 40), np.uint8)])  # fully transparent
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    image = load_image(path)
    _assert_rgb_u8(image, (20, 40))
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[0, -1]) == (0, 0, 255)


def test_truncated_jpeg(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = _encode(".jpg", noise)
    for cut in (2, len(jpeg) // 2):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(jpeg[:-cut])
        with pytest.raises(ImageDecodeError) as info:
            load_image(path)
        assert info.value.source == str(path)
        assert info.value.reason.startswith("not a decodable image (")


def test_truncated_png() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png = _encode(".png", noise)
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        load_image(png[: len(png) // 2])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"just some text, not an image\n", "not a decodable image"),
        (b"\xff\xd8\xff\xe0 looks like a JPEG start", "not a decodable image"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError) as info:
        load_image(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageDecodeError, match="is a directory"):
        load_image(tmp_path)


def test_empty_and_garbage_bytes() -> None:
    with pytest.raises(ImageDecodeError, match="empty input"):
        load_image(b"")
    with pytest.raises(SqueezerfaceError, match="not a decodable image"):
        load_image(b"\x00" * 100)


# ---------------------------------------------------------------------------------------- pixel cap


def test_pixel_cap_from_header_png_and_jpeg() -> None:
    """PNG over the cap is refused; JPEG over the cap is decoded at a smaller scale until even 1/8 is over."""
    image = np.zeros((30, 40, 3), np.uint8)
    for ext in (".png", ".jpg"):
        data = _encode(ext, image)
        assert load_image(data, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(ImageDecodeError, match=r"image is 40 x 30 = 1,200 pixels, over the cap of 1,199"):
        load_image(_encode(".png", image), max_pixels=1199)
    assert load_image(_encode(".jpg", image), max_pixels=1199).shape == (15, 20, 3)
    with pytest.raises(ImageDecodeError, match=r"image is 40 x 30 = 1,200 pixels, over the cap of 19"):
        load_image(_encode(".jpg", image), max_pixels=19)  # 1/8 would be 5 x 4 = 20 pixels


def test_pixel_cap_for_formats_without_header_parser_and_arrays() -> None:
    data = _encode(".bmp", np.zeros((30, 40, 3), np.uint8))
    assert image_size_from_header(data) is None
    with pytest.raises(ImageDecodeError, match="over the cap"):
        load_image(data, max_pixels=100)
    with pytest.raises(ImageDecodeError, match="over the cap"):
        load_image(np.zeros((30, 40), np.uint8), max_pixels=100)
    with pytest.raises(ValueError):
        load_image(data, max_pixels=0)


def test_header_cap_refuses_before_decoding() -> None:
    # A PNG header that claims 100000 x 100000 pixels, followed by nothing: refused for size, not decode.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    fake = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 4
    with pytest.raises(ImageDecodeError, match="over the cap"):
        load_image(fake)


# ---------------------------------------------------------------------------------------- header parser


def test_image_size_from_header() -> None:
    image = np.zeros((30, 41, 3), np.uint8)
    assert image_size_from_header(_encode(".png", image)) == (41, 30)
    assert image_size_from_header(_encode(".png", image[:, :, 0])) == (41, 30)
    assert image_size_from_header(_encode(".jpg", image)) == (41, 30)
    progressive = _encode(".jpg", image, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    assert image_size_from_header(progressive) == (41, 30)
    # An EXIF segment (which may embed a thumbnail with its own SOF) is skipped by its length.
    jpeg = _encode(".jpg", image)
    assert image_size_from_header(jpeg[:2] + _exif_app1(6) + jpeg[2:]) == (41, 30)
    assert image_size_from_header(bytearray(jpeg)) == (41, 30)


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"\xff\xd8\xff\xe0\x00", b"\xff\xd8\xff\xda"],
)
def test_image_size_from_header_unknown(data: bytes) -> None:
    assert image_size_from_header(data) is None


def test_image_size_from_truncated_headers_never_raises() -> None:
    jpeg = _encode(".jpg", np.zeros((8, 8, 3), np.uint8))
    sof = next(i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] == 0xC0)
    for end in range(sof + 10):
        size = image_size_from_header(jpeg[:end])
        assert size is None or size == (8, 8)
    assert image_size_from_header(jpeg[: sof + 9]) == (8, 8)


# ---------------------------------------------------------------------------------------- hashes


def test_sha256_helpers(tmp_path: Path) -> None:
    data = np.random.default_rng(3).bytes(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected == sha256_bytes(data) == sha256_bytes(memoryview(data))
    assert sha256_file(str(path)) == expected
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()  # hashing, unlike decoding, allows empty
    with pytest.raises(ImageDecodeError, match="no such file"):
        sha256_file(tmp_path / "missing.bin")
    with pytest.raises(ImageDecodeError, match="is a directory"):
        sha256_file(tmp_path)


def test_a_jpeg_over_the_cap_is_decoded_smaller_by_libjpeg_with_its_exif_orientation() -> None:
    """A phone photo over the pixel cap is not refused: libjpeg decodes it at 1/2, 1/4 or 1/8 scale, so
    the full-size picture is never allocated, and the EXIF rotation still applies."""
    import io

    from PIL import Image

    from squeezerface.imageio import jpeg_reduction, load_image

    stored = np.zeros((800, 1200, 3), np.uint8)
    stored[:, :600] = (255, 0, 0)  # left half red as stored, top half once rotated upright
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: turn 90 degrees clockwise to view
    Image.fromarray(stored).save(buf, "JPEG", quality=95, exif=exif)
    data = buf.getvalue()
    assert load_image(data).shape == (1200, 800, 3)  # under the default cap: full size, upright
    assert jpeg_reduction(1200, 800, 300_000) == 2
    small = load_image(data, max_pixels=300_000)
    assert small.shape == (600, 400, 3)
    assert small[:250, :, 0].mean() > 200 and small[350:, :, 0].mean() < 50  # red on top: rotated
    assert jpeg_reduction(1200, 800, 10_000) == 1  # not even 1/8 fits: refused
    with pytest.raises(ImageDecodeError, match="over the cap"):
        load_image(data, max_pixels=10_000)
