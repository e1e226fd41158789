"""A Patchca-style captcha generator: captchas drawn from a style file's parameters.

The court site draws its captchas with Patchca's ``ConfigurableCaptchaService`` at
160x70: four characters spread by ``BestFitTextRenderer``, each in a random colour with
one channel <= 70, in Verdana/Tahoma (DejaVu Sans on a Linux JVM) at 45 px, then one of
five filter chains per image. Every filter is an inverse map sampled bilinearly with
edge clamping; they are re-implemented here with numpy (no Patchca code is copied).

What to draw (size, length, characters, fonts, colours, filter families and their
strengths) comes from a :class:`~training.style.CaptchaStyle`; the site's is
``training/styles/site.json`` and is the default, so another site's captchas need a new
style file, not code. Two modes share one code path: ``faithful`` uses the style's own
ranges; ``wide`` stretches fonts, sizes, spacing and filter strengths so the model learns
the captcha, not our imitation of it. Output is deterministic for a seed: image ``i`` of
``generate(seed, n)`` depends only on ``(seed, i)``, so workers can split the work.
"""

from __future__ import annotations

import bisect
import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .style import CaptchaStyle, Draw, Mode, site_style


@dataclass(frozen=True)
class Captcha:
    image: Image.Image  # RGBA at the style's size, opaque, like the site's PNGs
    text: str  # as drawn, mixed case
    family: str  # the filter family that drew it
    wide: bool = False  # drawn with wide mode's ranges rather than the style's own

    @property
    def label(self) -> str:
        """What the site accepts: the text, case-insensitive, written lowercase."""
        return self.text.lower()


@dataclass(frozen=True)
class _Strength:
    """One captcha's draws from its mode: filter multipliers, font size, jitter and stroke."""

    ripple_amplitude: float
    ripple_period: float
    marble_amount: float
    diffuse_amount: float
    wobble_amplitude: float
    font_size: int
    jitter: float  # per-character position jitter in px
    stroke: int  # -1 thins, +1 thickens strokes


@lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _weighted(rng: np.random.Generator, weights: Sequence[float]) -> int:
    """An index drawn with one uniform number against the cumulative weights."""
    cumulative = np.cumsum(weights)
    return bisect.bisect_right(cumulative.tolist(), rng.random() * cumulative[-1])


def _pick_font(rng: np.random.Generator, style: CaptchaStyle, mode: Mode) -> str:
    if mode.extra_fonts and rng.random() < mode.extra_font_probability:
        return mode.extra_fonts[rng.integers(len(mode.extra_fonts))]
    family = style.fonts[_weighted(rng, [f.weight for f in style.fonts])].files
    return family[rng.integers(len(family))]


def _colour(rng: np.random.Generator, style: CaptchaStyle) -> tuple[int, int, int]:
    """A text or curve colour by the style's rule; the site's: one channel 0..70, the others 0..255."""
    rule = style.colour
    if rule["rule"] == "one_dark_channel":
        colour = rng.integers(0, 256, size=3)
        colour[rng.integers(3)] = rng.integers(0, rule["dark_max"] + 1)
    elif rule["rule"] == "channels":
        colour = rng.integers(rule["min"], rule["max"] + 1, size=3)
    else:
        colour = np.asarray(rule["colours"][int(rng.integers(len(rule["colours"])))])
    return int(colour[0]), int(colour[1]), int(colour[2])


def draw(rng: np.random.Generator, value: Draw) -> float:
    """A mode parameter's value: fixed, or one draw (``uniform`` [lo, hi), ``integers`` lo..hi, ``choice``).

    A fixed value takes nothing from the random stream: a mode of fixed values (the site's
    faithful mode) leaves every later draw where the original generator had it.
    """
    if not isinstance(value, tuple):
        return value
    kind, args = value
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "integers":
        return int(rng.integers(int(args[0]), int(args[1]) + 1))
    return rng.choice(list(args))  # type: ignore[no-any-return]


def _strength(rng: np.random.Generator, mode: Mode) -> _Strength:
    return _Strength(
        ripple_amplitude=float(draw(rng, mode.ripple_amplitude)),
        ripple_period=float(draw(rng, mode.ripple_period)),
        marble_amount=float(draw(rng, mode.marble_amount)),
        diffuse_amount=float(draw(rng, mode.diffuse_amount)),
        wobble_amplitude=float(draw(rng, mode.wobble_amplitude)),
        font_size=int(draw(rng, mode.font_size)),
        jitter=float(draw(rng, mode.jitter)),
        stroke=int(draw(rng, mode.stroke)),
    )


def _draw_text(
    canvas: Image.Image, text: str, rng: np.random.Generator, style: CaptchaStyle, mode: Mode, s: _Strength
) -> None:
    """BestFitTextRenderer: advances summed, the spare width shared out as equal gaps."""
    left, right, top, bottom = style.margins
    fonts = [_font(_pick_font(rng, style, mode), s.font_size) for _ in text]
    widths = [round(f.getlength(ch)) for f, ch in zip(fonts, text, strict=True)]
    ascents = [f.getmetrics()[0] for f in fonts]
    gap = (style.width - sum(widths) - left - right) / len(text)
    x = left + gap / 2
    layer = Image.new("RGBA", canvas.size, (*style.background, 0))
    pen = ImageDraw.Draw(layer)
    for ch, font, w, ascent in zip(text, fonts, widths, ascents, strict=True):
        baseline = top + (style.height - top - bottom + 0.7 * ascent) / 2
        dx, dy = rng.uniform(-s.jitter, s.jitter, size=2) if s.jitter else (0.0, 0.0)
        colour = _colour(rng, style)
        pen.text(
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


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each output pixel's (y, x), float32."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return ys, xs


def _remap(pixels: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Output (x, y) samples the input at (x+dx, y+dy): bilinear, edges clamped, floored.

    ``pixels`` is float32 [H, W, 3] (the canvas is opaque, so alpha never changes).
    OpenCV's remap does the bilinear gather about 20x faster than numpy fancy indexing.
    """
    ys, xs = _grid(*pixels.shape[:2])
    map_x = (xs + dx).astype(np.float32)
    map_y = (ys + dy).astype(np.float32)
    out = cv2.remap(pixels, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.floor(out)


#: A filter's parameters from the style, as read from its file.
Params = Mapping[str, Any]


def _ripple(pixels: np.ndarray, rng: np.random.Generator, s: _Strength, p: Params) -> np.ndarray:
    px, py = rng.uniform(0, p["phase"], size=2)
    ys, xs = _grid(*pixels.shape[:2])
    a = p["amplitude"] * s.ripple_amplitude
    dx = a * np.sin(ys / (p["y_period"] * s.ripple_period) + py)
    dy = a * np.cos(xs / (p["x_period"] * s.ripple_period) + px)
    return _remap(pixels, dx, dy)


def _double_ripple(pixels: np.ndarray, rng: np.random.Generator, s: _Strength, p: Params) -> np.ndarray:
    px, py = rng.uniform(0, p["phase"], size=2)
    ys, xs = _grid(*pixels.shape[:2])
    a = p["amplitude"] * s.ripple_amplitude
    k = s.ripple_period
    b = p["second_amplitude"]
    dx = a * (np.sin(ys / (p["y_period"] * k) + py) + b * np.sin(p["second_y_frequency"] * ys / k + py))
    dy = a * (np.cos(xs / (p["x_period"] * k) + px) + b * np.cos(p["second_x_frequency"] * xs / k + px))
    return _remap(pixels, dx, dy)


def _wobble(pixels: np.ndarray, rng: np.random.Generator, s: _Strength, p: Params) -> np.ndarray:
    px = rng.uniform(0, p["x_phase"])
    py = rng.uniform(0, p["y_phase"])
    ys, xs = _grid(*pixels.shape[:2])
    dx = p["x_amplitude"] * s.wobble_amplitude * np.cos((xs + ys) / p["period"] + px)
    dy = p["y_amplitude"] * s.wobble_amplitude * np.sin((xs + ys) / p["period"] + py)
    return _remap(pixels, dx, dy)


def _diffuse(pixels: np.ndarray, rng: np.random.Generator, s: _Strength, p: Params) -> np.ndarray:
    """Each pixel samples a ring of the given radius in an independent random direction."""
    k = rng.integers(0, 255, size=pixels.shape[:2]).astype(np.float32)
    amount = p["radius"] * s.diffuse_amount
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


def _marble(pixels: np.ndarray, rng: np.random.Generator, s: _Strength, p: Params) -> np.ndarray:
    """A displacement whose direction turns ``turns`` times across the noise range."""
    rx, ry = rng.uniform(0, 256, size=2)
    ys, xs = _grid(*pixels.shape[:2])
    scale = p["scale"]
    d = np.clip((127 * (1 + _perlin(xs / scale + rx, ys / scale + ry))).astype(np.int32), 0, 255)
    angle = 2 * np.pi * p["turns"] * d / 256
    amount = p["amount"] * s.marble_amount
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


def _draw_curve(canvas: Image.Image, rng: np.random.Generator, style: CaptchaStyle, p: Params) -> None:
    """Control points across the text band; every segment a new colour and width."""
    width, height = canvas.size
    low, high = p["points"]
    cp = low + int(rng.integers(0, high - low + 1))
    inset = p["inset"]
    points = [
        (
            float(int(inset + i * (width - 2 * inset) / (cp - 1))),
            float(int(height * (p["band_top"] + p["band_height"] * rng.random()))),
        )
        for i in range(cp)
    ]
    path = _catmull_rom(points)
    scale = 4  # supersample for anti-aliased strokes
    layer = Image.new("RGBA", (width * scale, height * scale), (*style.background, 0))
    pen = ImageDraw.Draw(layer)
    thinnest, thickest = p["width"]
    for a, b in zip(path[:-1], path[1:], strict=True):
        stroke = thinnest + (thickest - thinnest) * rng.random()
        pen.line(
            [(a[0] * scale, a[1] * scale), (b[0] * scale, b[1] * scale)],
            fill=(*_colour(rng, style), 255),
            width=max(1, round(stroke * scale)),
        )
    canvas.alpha_composite(layer.resize(canvas.size, Image.Resampling.BOX))


#: The distortions a family's steps name, each an inverse map of the whole picture.
DISTORTIONS = {
    "ripple": _ripple,
    "double_ripple": _double_ripple,
    "wobble": _wobble,
    "diffuse": _diffuse,
    "marble": _marble,
}


def _random_text(rng: np.random.Generator, style: CaptchaStyle, mode: Mode) -> str:
    """Uniform characters by one integer draw each, or by the style's weights (extra characters weigh 1)."""
    pool = style.charset + mode.extra_chars
    if style.char_weights is None:
        return "".join(pool[i] for i in rng.integers(0, len(pool), size=style.label_length))
    weights = np.cumsum([*style.char_weights, *[1.0] * len(mode.extra_chars)]).tolist()
    return "".join(
        pool[bisect.bisect_right(weights, u * weights[-1])] for u in rng.random(style.label_length)
    )


def _random_family(rng: np.random.Generator, style: CaptchaStyle) -> str:
    families = style.families
    if families[0].weight is None:
        return families[int(rng.integers(len(families)))].name
    return families[_weighted(rng, [f.weight or 0.0 for f in families])].name


def render_captcha(
    rng: np.random.Generator,
    text: str | None = None,
    family: str | None = None,
    *,
    wide: bool | None = None,
    style: CaptchaStyle | None = None,
) -> Captcha:
    """One captcha of ``style`` (default: the site's). ``wide=None`` draws the mode by the style's odds."""
    style = style or site_style()
    if wide is None:
        wide = bool(rng.random() < style.wide_probability)
    mode = style.wide if wide else style.faithful
    if text is None:
        text = _random_text(rng, style, mode)
    if family is None:
        family = _random_family(rng, style)
    steps = style.family(family).steps
    strength = _strength(rng, mode)
    canvas = Image.new("RGBA", (style.width, style.height), (*style.background, 255))
    _draw_text(canvas, text, rng, style, mode, strength)
    for step in steps:
        if step == "curve":
            _draw_curve(canvas, rng, style, style.filters[step])
    pixels = np.asarray(canvas.convert("RGB"), dtype=np.float32)
    for step in steps:
        if step != "curve":
            pixels = DISTORTIONS[step](pixels, rng, strength, style.filters[step])
    return Captcha(Image.fromarray(pixels.astype(np.uint8), "RGB").convert("RGBA"), text, family, wide)


def captcha_at(
    seed: int,
    index: int,
    text: str | None = None,
    family: str | None = None,
    *,
    wide: bool | None = None,
    style: CaptchaStyle | None = None,
) -> Captcha:
    """Image ``index`` of the stream for ``seed``; independent of any other index."""
    return render_captcha(np.random.default_rng([seed, index]), text, family, wide=wide, style=style)


def generate(seed: int, count: int, start: int = 0, style: CaptchaStyle | None = None) -> Iterator[Captcha]:
    for index in range(start, start + count):
        yield captcha_at(seed, index, style=style)


def png_bytes(captcha: Captcha) -> bytes:
    out = io.BytesIO()
    captcha.image.save(out, format="PNG")
    return out.getvalue()


def file_name(captcha: Captcha, data: bytes) -> str:
    """The reference project's naming: ``<label>_<md5 of the file>.png``."""
    return f"{captcha.label}_{hashlib.md5(data).hexdigest()}.png"
