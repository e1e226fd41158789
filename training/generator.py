"""A Patchca-style captcha generator: the site's captchas, re-drawn from Patchca's rendering parameters.

The court site draws its captchas with Patchca's ``ConfigurableCaptchaService`` at
160x70: four characters spread by ``BestFitTextRenderer``, each in a random colour with
one channel <= 70, in Verdana/Tahoma (DejaVu Sans on a Linux JVM) at 45 px, then one of
five filter chains per image. Every filter is an inverse map sampled bilinearly with
edge clamping; they are re-implemented here with numpy (no Patchca code is copied).

Two modes share one code path: ``faithful`` uses Patchca's exact ranges; ``wide``
stretches fonts, sizes, spacing and filter strengths so the model learns the captcha,
not our imitation of it. Output is deterministic for a seed: image ``i`` of
``generate(seed, n)`` depends only on ``(seed, i)``, so workers can split the work.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shixin_client._spec import SITE_CHARS

WIDTH, HEIGHT = 160, 70
MARGIN_LEFT = MARGIN_RIGHT = 10  # set by ConfigurableCaptchaService (facts §2)
MARGIN_TOP = MARGIN_BOTTOM = 5  # AbstractTextRenderer defaults
FONT_SIZE = 45
TEXT_LENGTH = 4
STYLES = ("curves", "diffuse", "marble", "wobble", "double_ripple")

#: Characters added in wide mode so the model knows every class it can emit; ``l``,
#: ``o`` and ``O`` stay out because they are drawn like the site's ``I``, and ``0``.
EXTRA_CHARS = "01jJ"

FONT_DIR = Path(__file__).with_name("fonts")
#: Patchca draws ``Verdana`` or ``Tahoma`` per character (facts §6): the Linux JVM's
#: DejaVu Sans (or its Vera twin Veranda) for Verdana, Wine's Tahoma clone for Tahoma.
VERDANA_LIKE = ("DejaVuSans.ttf", "Veranda.ttf")
TAHOMA_LIKE = ("tahoma.ttf",)
#: Related sans faces used only in wide mode, for variety.
OTHER_SANS = ("VeranaSans-Regular.otf", "LiberationSans-Regular.ttf", "FreeSans.ttf")


@dataclass(frozen=True)
class Captcha:
    image: Image.Image  # RGBA 160x70, opaque, like the site's PNGs
    text: str  # as drawn, mixed case
    style: str
    wide: bool = False  # drawn with wide mode's ranges rather than Patchca's own

    @property
    def label(self) -> str:
        """What the site accepts: the text, case-insensitive, written lowercase."""
        return self.text.lower()


@dataclass(frozen=True)
class _Strength:
    """Multipliers that wide mode draws per image; all 1.0 in faithful mode."""

    ripple_amp: float = 1.0
    ripple_wave: float = 1.0
    marble_amount: float = 1.0
    diffuse_amount: float = 1.0
    wobble_amp: float = 1.0
    font_size: int = FONT_SIZE
    jitter: float = 0.0  # per-character position jitter in px
    stroke: int = 0  # -1 thins, +1 thickens strokes


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def _pick_font(rng: np.random.Generator, wide: bool) -> str:
    if wide and rng.random() < 0.15:
        return OTHER_SANS[rng.integers(len(OTHER_SANS))]
    family = VERDANA_LIKE if rng.random() < 0.5 else TAHOMA_LIKE
    return family[rng.integers(len(family))]


def _site_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """One channel from 0..70, the other two from 0..255: the colour factory the site configures."""
    colour = rng.integers(0, 256, size=3)
    colour[rng.integers(3)] = rng.integers(0, 71)
    return int(colour[0]), int(colour[1]), int(colour[2])


def _strength(rng: np.random.Generator, wide: bool) -> _Strength:
    if not wide:
        return _Strength()
    return _Strength(
        ripple_amp=float(rng.uniform(0.6, 1.35)),
        ripple_wave=float(rng.uniform(0.8, 1.25)),
        marble_amount=float(rng.uniform(0.8, 2.4)),
        diffuse_amount=float(rng.uniform(0.7, 1.8)),
        wobble_amp=float(rng.uniform(0.6, 1.5)),
        font_size=int(rng.integers(38, 52)),
        jitter=float(rng.uniform(0.0, 4.0)),
        stroke=int(rng.choice([-1, 0, 0, 0, 1])),
    )


def _draw_text(canvas: Image.Image, text: str, rng: np.random.Generator, wide: bool, s: _Strength) -> None:
    """BestFitTextRenderer: advances summed, the spare width shared out as equal gaps."""
    fonts = [_font(_pick_font(rng, wide), s.font_size) for _ in text]
    widths = [round(f.getlength(ch)) for f, ch in zip(fonts, text, strict=True)]
    ascents = [f.getmetrics()[0] for f in fonts]
    gap = (WIDTH - sum(widths) - MARGIN_LEFT - MARGIN_RIGHT) / len(text)
    x = MARGIN_LEFT + gap / 2
    layer = Image.new("RGBA", canvas.size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    for ch, font, w, ascent in zip(text, fonts, widths, ascents, strict=True):
        baseline = MARGIN_TOP + (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM + 0.7 * ascent) / 2
        dx, dy = rng.uniform(-s.jitter, s.jitter, size=2) if s.jitter else (0.0, 0.0)
        colour = _site_colour(rng)
        draw.text(
            (x + dx, baseline + dy),
            ch,
            font=font,
            fill=(*colour, 255),
            anchor="ls",
            stroke_width=max(s.stroke, 0),
            stroke_fill=(*colour, 255),
        )
        x += w + gap
    if s.stroke < 0:
        alpha = np.asarray(layer, dtype=np.float32)
        alpha[:, :, 3] = np.clip((alpha[:, :, 3] - 96.0) * 1.6, 0, 255)
        layer = Image.fromarray(alpha.astype(np.uint8), "RGBA")
    canvas.alpha_composite(layer)


_YS, _XS = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)


def _remap(pixels: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Output (x, y) samples the input at (x+dx, y+dy): bilinear, edges clamped, floored.

    ``pixels`` is float32 [H, W, 3] (the canvas is opaque, so alpha never changes).
    OpenCV's remap does the bilinear gather about 20x faster than numpy fancy indexing.
    """
    map_x = (_XS + dx).astype(np.float32)
    map_y = (_YS + dy).astype(np.float32)
    out = cv2.remap(pixels, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.floor(out)


def _ripple(pixels: np.ndarray, rng: np.random.Generator, s: _Strength) -> np.ndarray:
    px, py = rng.uniform(0, 5, size=2)
    xs, ys = _XS, _YS
    a = 5.0 * s.ripple_amp
    dx = a * np.sin(ys / (10 * s.ripple_wave) + py)
    dy = a * np.cos(xs / (20 * s.ripple_wave) + px)
    return _remap(pixels, dx, dy)


def _double_ripple(pixels: np.ndarray, rng: np.random.Generator, s: _Strength) -> np.ndarray:
    px, py = rng.uniform(0, 5, size=2)
    xs, ys = _XS, _YS
    a = 5.0 * s.ripple_amp
    k = s.ripple_wave
    dx = a * (np.sin(ys / (10 * k) + py) + 1.3 * np.sin(0.06 * ys / k + py))
    dy = a * (np.cos(xs / (20 * k) + px) + 1.3 * np.cos(0.03 * xs / k + px))
    return _remap(pixels, dx, dy)


def _wobble(pixels: np.ndarray, rng: np.random.Generator, s: _Strength) -> np.ndarray:
    px = rng.uniform(0, 3)
    py = rng.uniform(0, 10)
    xs, ys = _XS, _YS
    dx = 4.0 * s.wobble_amp * np.cos((xs + ys) / 15 + px)
    dy = 3.0 * s.wobble_amp * np.sin((xs + ys) / 15 + py)
    return _remap(pixels, dx, dy)


def _diffuse(pixels: np.ndarray, rng: np.random.Generator, s: _Strength) -> np.ndarray:
    """Each pixel samples a ring of radius 1.6 in an independent random direction."""
    k = rng.integers(0, 255, size=(HEIGHT, WIDTH)).astype(np.float32)
    amount = 1.6 * s.diffuse_amount
    angle = 2 * np.pi * k / 256
    return _remap(pixels, amount * np.sin(angle), amount * np.cos(angle))


# Ken Perlin's reference permutation (improved noise, 2002), as Patchca's PerlinNoise uses.
_PERM = np.array(
    (
        "151 160 137 91 90 15 131 13 201 95 96 53 194 233 7 225 140 36 103 30 69 142 8 99 37 240 21 10 23 "
        "190 6 148 247 120 234 75 0 26 197 62 94 252 219 203 117 35 11 32 57 177 33 88 237 149 56 87 174 20 "
        "125 136 171 168 68 175 74 165 71 134 139 48 27 166 77 146 158 231 83 111 229 122 60 211 133 230 220 "
        "105 92 41 55 46 245 40 244 102 143 54 65 25 63 161 1 216 80 73 209 76 132 187 208 89 18 169 200 196 "
        "135 130 116 188 159 86 164 100 109 198 173 186 3 64 52 217 226 250 124 123 5 202 38 147 118 126 255 "
        "82 85 212 207 206 59 227 47 16 58 17 182 189 28 42 223 183 170 213 119 248 152 2 44 154 163 70 221 "
        "153 101 155 167 43 172 9 129 22 39 253 19 98 108 110 79 113 224 232 178 185 112 104 218 246 97 228 "
        "251 34 242 193 238 210 144 12 191 179 162 241 81 51 145 235 249 14 239 107 49 192 214 31 181 199 "
        "106 157 184 84 204 176 115 121 50 45 127 4 150 254 138 236 205 93 222 114 67 29 24 72 243 141 128 "
        "195 78 66 215 61 156 180 "
    ).split(),
    dtype=np.intp,
)
_P = np.concatenate([_PERM, _PERM])


def _perlin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Improved 2-D Perlin noise: fade 6t^5-15t^4+10t^3, gradients (+-1, +-1) by hash & 3."""
    xi = np.floor(x).astype(np.intp) & 255
    yi = np.floor(y).astype(np.intp) & 255
    xf = x - np.floor(x)
    yf = y - np.floor(y)
    u = xf * xf * xf * (xf * (xf * 6 - 15) + 10)
    v = yf * yf * yf * (yf * (yf * 6 - 15) + 10)

    def grad(h: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        h = h & 3
        return np.where(h & 1, -gx, gx) + np.where(h & 2, -gy, gy)

    aa = _P[_P[xi] + yi]
    ab = _P[_P[xi] + yi + 1]
    ba = _P[_P[xi + 1] + yi]
    bb = _P[_P[xi + 1] + yi + 1]
    x1 = grad(aa, xf, yf) * (1 - u) + grad(ba, xf - 1, yf) * u
    x2 = grad(ab, xf, yf - 1) * (1 - u) + grad(bb, xf - 1, yf - 1) * u
    return x1 * (1 - v) + x2 * v


def _marble(pixels: np.ndarray, rng: np.random.Generator, s: _Strength) -> np.ndarray:
    """Displacement of 1.1 px whose direction turns 6.2 times across the noise range."""
    rx, ry = rng.uniform(0, 256, size=2)
    xs, ys = _XS, _YS
    d = np.clip((127 * (1 + _perlin(xs / 15 + rx, ys / 15 + ry))).astype(np.int32), 0, 255)
    angle = 2 * np.pi * 6.2 * d / 256
    amount = 1.1 * s.marble_amount
    return _remap(pixels, amount * np.sin(angle), amount * np.cos(angle))


def _catmull_rom(points: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """Patchca's curve path: spans sampled at t = j/6, truncated, phantom end points."""
    first = (2 * points[0][0] - points[1][0], 2 * points[0][1] - points[1][1])
    last = (2 * points[-1][0] - points[-2][0], 2 * points[-1][1] - points[-2][1])
    ext = [first, *points, last]
    path = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        for j in range(6):
            t = j / 6
            t2, t3 = t * t, t * t * t
            coords = [
                0.5 * (2 * p1[k] + (p2[k] - p0[k]) * t + (2 * p0[k] - 5 * p1[k] + 4 * p2[k] - p3[k]) * t2
                       + (3 * p1[k] - p0[k] - 3 * p2[k] + p3[k]) * t3)
                for k in (0, 1)
            ]  # fmt: skip
            path.append((int(coords[0]), int(coords[1])))
    return path


def _draw_curve(canvas: Image.Image, rng: np.random.Generator) -> None:
    """4-6 control points across the text band; every segment a new colour, 2-4 px wide."""
    cp = 4 + int(rng.integers(0, 3))
    points = [
        (float(int(5 + i * (WIDTH - 10) / (cp - 1))), float(int(HEIGHT * (0.2 + 0.5 * rng.random()))))
        for i in range(cp)
    ]
    path = _catmull_rom(points)
    scale = 4  # supersample for anti-aliased strokes
    layer = Image.new("RGBA", (WIDTH * scale, HEIGHT * scale), (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    for a, b in zip(path[:-1], path[1:], strict=True):
        width = 2 + 2 * rng.random()
        draw.line(
            [(a[0] * scale, a[1] * scale), (b[0] * scale, b[1] * scale)],
            fill=(*_site_colour(rng), 255),
            width=max(1, round(width * scale)),
        )
    canvas.alpha_composite(layer.resize(canvas.size, Image.Resampling.BOX))


def render_captcha(
    rng: np.random.Generator,
    text: str | None = None,
    style: str | None = None,
    *,
    wide: bool | None = None,
) -> Captcha:
    """One captcha. ``wide=None`` draws faithful or wide at 50/50."""
    if wide is None:
        wide = bool(rng.random() < 0.5)
    if text is None:
        pool = SITE_CHARS + EXTRA_CHARS if wide else SITE_CHARS
        text = "".join(pool[i] for i in rng.integers(0, len(pool), size=TEXT_LENGTH))
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    strength = _strength(rng, wide)
    canvas = Image.new("RGBA", (WIDTH, HEIGHT), (255, 255, 255, 255))
    _draw_text(canvas, text, rng, wide, strength)
    if style == "curves":
        _draw_curve(canvas, rng)
    pixels = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    if style == "double_ripple":
        pixels = _double_ripple(pixels, rng, strength)
    else:
        pre = {"curves": None, "diffuse": _diffuse, "marble": _marble, "wobble": _wobble}[style]
        if pre is not None:
            pixels = pre(pixels, rng, strength)
        pixels = _ripple(pixels, rng, strength)
    return Captcha(Image.fromarray(pixels.astype(np.uint8), "RGB").convert("RGBA"), text, style, wide)


def captcha_at(seed: int, index: int, **kwargs: object) -> Captcha:
    """Image ``index`` of the stream for ``seed``; independent of any other index."""
    return render_captcha(np.random.default_rng([seed, index]), **kwargs)  # type: ignore[arg-type]


def generate(seed: int, count: int, start: int = 0) -> Iterator[Captcha]:
    for index in range(start, start + count):
        yield captcha_at(seed, index)


def png_bytes(captcha: Captcha) -> bytes:
    out = io.BytesIO()
    captcha.image.save(out, format="PNG")
    return out.getvalue()


def file_name(captcha: Captcha, data: bytes) -> str:
    """The reference project's naming: ``<label>_<md5 of the file>.png``."""
    return f"{captcha.label}_{hashlib.md5(data).hexdigest()}.png"
