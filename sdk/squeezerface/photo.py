"""A photo as the face path reads it: at the scales it needs, each made once, a large JPEG never in full
unless a small face asks for it.

Why: on a 12 MP phone photo, decoding at full size costs about 47 ms and searching it for faces from 40 px
up costs far more, while the subject's face is usually hundreds of pixels wide. libjpeg can decode at 1/2,
1/4 and 1/8 scale directly (an area average computed in the DCT, faster than decoding and shrinking), so
the detector searches a reduced decode first and asks for a finer one only for the small faces a coarse
one cannot hold (`FaceDetector.detect_photo`), and a face is aligned from the coarsest decode in which it is
still at least `ALIGN_MIN_FACE` (76) pixels wide, i.e. never enlarged on its way to the 112 x 112 template.
Arrays (and PIL images, other formats) are reduced with an area resize instead, so every source takes the
same path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from squeezerface.imageio import (
    DEFAULT_MAX_PIXELS,
    ChannelOrder,
    ImageSource,
    decode_reduced,
    encoded_bytes,
    image_size_from_header,
    is_jpeg,
    load_image,
)

REDUCTIONS = (1, 2, 4, 8)
"""The scales a photo is read at: libjpeg's DCT scaling factors."""
ALIGN_MIN_FACE = 76.0
"""A face box at least this wide (pixels) is aligned from that decode: the 112 x 112 template holds a
detector box at about 76 px (the detector's boxes are 2.16 eye distances wide, the template's eyes 35.2 px
apart), so the crop is made at 1:1 or by shrinking, never by enlarging. `benchmarks/realsize.py photopath`
checks the embeddings against full-size alignment."""


@dataclass
class Photo:
    """One photo, readable at each of `REDUCTIONS` (`at`), each made at most once.

    Coordinates are always the full-size photo's (`width` x `height`); `at(r)` is that photo scaled by 1/r
    (rounded up, as libjpeg does)."""

    width: int
    height: int
    name: str
    _data: bytes | None = field(default=None, repr=False)  # a JPEG decoded at reduced scales
    _max_pixels: int = DEFAULT_MAX_PIXELS
    _levels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        source: ImageSource,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        channel_order: ChannelOrder = "RGB",
        name: str | None = None,
    ) -> Photo:
        """A photo from anything `load_image` takes; an encoded JPEG is not decoded until `at` is called."""
        encoded = encoded_bytes(source)
        if encoded is not None and is_jpeg(encoded[0]):
            data, default_name = encoded
            size = image_size_from_header(data)
            if size is not None and size[0] > 0 and size[1] > 0:
                return cls(size[0], size[1], name or default_name, data, max_pixels)
        if encoded is not None:  # another format: decoded whole, from the bytes already read
            label = str(source) if isinstance(source, (str, os.PathLike)) else encoded[1]
            rgb = decode_reduced(encoded[0], 1, label, max_pixels)
            return cls.from_array(rgb, name or label)
        rgb = load_image(source, max_pixels=max_pixels, channel_order=channel_order)
        return cls.from_array(rgb, name or "image")

    @classmethod
    def from_array(cls, rgb: np.ndarray, name: str = "image") -> Photo:
        """A photo already decoded to RGB uint8."""
        photo = cls(int(rgb.shape[1]), int(rgb.shape[0]), name)
        photo._levels[1] = rgb
        return photo

    def at(self, reduction: int = 1) -> np.ndarray:
        """The RGB photo scaled by 1/`reduction` (one of `REDUCTIONS`), decoded or resized once."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if reduction not in self._levels:
            if self._data is not None:
                rgb = decode_reduced(self._data, reduction, self.name, self._max_pixels)
                turned = (-(-self.height // reduction), -(-self.width // reduction))
                if self.width != self.height and (rgb.shape[1], rgb.shape[0]) == turned:
                    self.width, self.height = self.height, self.width  # EXIF orientation turned it
            else:
                import cv2

                full = self.at(1)
                size = (-(-self.width // reduction), -(-self.height // reduction))
                rgb = cv2.resize(full, size, interpolation=cv2.INTER_AREA)
            self._levels[reduction] = rgb
        return self._levels[reduction]

    def scale_of(self, reduction: int) -> float:
        """Width of `at(reduction)` over the full width: 1/reduction up to rounding, smaller where the
        pixel cap made libjpeg scale further."""
        return self.at(reduction).shape[1] / self.width

    def finest(self) -> int:
        """The finest reduction read so far (1 when none has been: reading it then decodes in full)."""
        return min(self._levels, default=1)

    def reduction_for(self, face_width: float) -> int:
        """The reduction to align a face this wide (full-size pixels) from: the coarsest decode already
        read in which it is at least `ALIGN_MIN_FACE` wide, else the coarsest such decode to make (1 for a
        face too small for any). A photo read in full is never decoded again, smaller, for alignment."""
        fits = [r for r in REDUCTIONS if face_width / r >= ALIGN_MIN_FACE] or [1]
        read = [r for r in fits if r in self._levels]
        return max(read or fits)
