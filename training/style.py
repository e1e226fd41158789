"""A captcha style: everything the generator draws, read from one JSON file.

The site's style is ``training/styles/site.json``; a changed site is a new file, not a code
change. The generator (``training.generator``), training (``--style FILE``), the CLIs that
render (``training.generate``, ``training.sheet``) and fine-tuning all read it through
:func:`load_style`. ``training/styles/README.md`` documents every key.

Size, label length, the drawn characters and the model's classes default to the SDK's own
(``shixin_client._spec``): the site's file leaves them out, so the SDK stays their one
source, and :attr:`CaptchaStyle.spec` is the ``CaptchaSpec`` a model of the style reads with.

``"extends": "site"`` (a style name in ``training/styles/`` or a path relative to the file)
starts from another style: its sections are merged key by key, except ``families`` and
``colour``, which a file gives whole, and lists, which replace.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from shixin_client._spec import (
    CHARSET,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    LABEL_LENGTH,
    SITE_CHARS,
    TIME_STEPS,
    CaptchaSpec,
)

STYLE_DIR = Path(__file__).with_name("styles")
SITE_STYLE = STYLE_DIR / "site.json"
FONT_DIR = Path(__file__).with_name("fonts")

#: Every filter step and the parameters it needs (``training/styles/README.md`` says what each does).
FILTER_PARAMETERS: dict[str, frozenset[str]] = {
    "ripple": frozenset({"amplitude", "y_period", "x_period", "phase"}),
    "double_ripple": frozenset(
        {
            "amplitude",
            "y_period",
            "x_period",
            "phase",
            "second_amplitude",
            "second_y_frequency",
            "second_x_frequency",
        }
    ),
    "wobble": frozenset({"x_amplitude", "y_amplitude", "period", "x_phase", "y_phase"}),
    "diffuse": frozenset({"radius"}),
    "marble": frozenset({"amount", "turns", "scale"}),
    "curve": frozenset({"points", "band_top", "band_height", "width", "inset"}),
}
COLOUR_RULES = {"one_dark_channel": {"dark_max"}, "channels": {"min", "max"}, "palette": {"colours"}}
#: Sections an ``extends`` file replaces whole rather than merging key by key.
REPLACED_WHOLE = frozenset({"families", "colour"})

#: A mode parameter: a fixed number, or one draw per captcha (see :func:`draw`).
Draw = Union[float, int, tuple[str, tuple[float, ...]]]


class StyleError(ValueError):
    """A style file that cannot be read, or a value in it that makes no captcha; names the file and key."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"style {source}: {problem}")


@dataclass(frozen=True)
class Mode:
    """How one generator mode draws: fixed values or per-captcha draws, in this field order."""

    font_size: Draw
    ripple_amplitude: Draw = 1.0
    ripple_period: Draw = 1.0
    marble_amount: Draw = 1.0
    diffuse_amount: Draw = 1.0
    wobble_amplitude: Draw = 1.0
    jitter: Draw = 0.0
    stroke: Draw = 0
    #: Characters this mode draws besides the style's charset.
    extra_chars: str = ""
    #: Font files this mode draws instead of the style's fonts, with probability ``extra_font_probability``.
    extra_fonts: tuple[str, ...] = ()
    extra_font_probability: float = 0.0


#: The mode fields drawn per captcha, in the order their draws are taken from the stream.
DRAWN_FIELDS = (
    "ripple_amplitude", "ripple_period", "marble_amount", "diffuse_amount", "wobble_amplitude",
    "font_size", "jitter", "stroke",
)  # fmt: skip
INTEGER_FIELDS = frozenset({"font_size", "stroke"})


@dataclass(frozen=True)
class FontFamily:
    files: tuple[str, ...]  # absolute paths
    weight: float


@dataclass(frozen=True)
class Family:
    """A filter family: the steps drawn in order, and its weight among the families."""

    name: str
    steps: tuple[str, ...]
    weight: float | None  # None: every family is equally likely


@dataclass(frozen=True)
class CaptchaStyle:
    name: str
    source: str = field(compare=False)  # the file it was read from, for messages
    width: int
    height: int
    label_length: int
    charset: str  # as drawn, mixed case
    model_charset: str  # the model's classes in output order, lowercase
    char_weights: tuple[float, ...] | None  # per charset character; None: uniform
    margins: tuple[int, int, int, int]  # left, right, top, bottom
    background: tuple[int, int, int]
    colour: Mapping[str, Any]
    fonts: tuple[FontFamily, ...]
    families: tuple[Family, ...]
    filters: Mapping[str, Mapping[str, Any]]
    wide_probability: float
    faithful: Mode
    wide: Mode
    about: str = field(default="", compare=False)

    @property
    def spec(self) -> CaptchaSpec:
        """The spec a model of this style reads with; the CNN pools the width as the SDK's model does."""
        return CaptchaSpec(
            charset=self.model_charset,
            label_length=self.label_length,
            height=self.height,
            width=self.width,
            time_steps=self.width * TIME_STEPS // IMAGE_WIDTH,
        )

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(family.name for family in self.families)

    def family(self, name: str) -> Family:
        for family in self.families:
            if family.name == name:
                return family
        raise ValueError(
            f"unknown filter family {name!r} in style {self.name!r}; choose from {self.family_names}"
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StyleError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StyleError(str(path), f"cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise StyleError(str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise StyleError(str(path), "must hold a JSON object")
    return data


def _merge(base: dict[str, Any], override: Mapping[str, Any], top: bool = True) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and not (top and key in REPLACED_WHOLE)
        ):
            merged[key] = _merge(merged[key], value, top=False)
        else:
            merged[key] = value
    return merged


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's keys over those of the style it extends, and the folder its font names start from."""
    path = path.resolve()
    if path in seen:
        raise StyleError(str(path), "extends itself")
    data = _read_json(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise StyleError(str(path), "extends: must be a style name or a file path")
    candidate = path.parent / parent
    base_path = candidate if candidate.suffix == ".json" else STYLE_DIR / f"{parent}.json"
    return _merge(_raw(base_path, (*seen, path)), data)


class _Reader:
    """Typed access to a style's keys; every problem is a StyleError naming the key."""

    def __init__(self, source: str, folder: Path) -> None:
        self.source = source
        self.folder = folder

    def fail(self, key: str, problem: str) -> StyleError:
        return StyleError(self.source, f"{key}: {problem}")

    def number(self, value: Any, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low}..{high}")
        return value

    def integer(self, value: Any, key: str, low: int = 0, high: int = 1 << 30) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low}..{high}")
        return value

    def mapping(
        self, value: Any, key: str, allowed: frozenset[str] | set[str] | None = None
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be an object, got {value!r}")
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise self.fail(key, f"unknown keys {unknown}; known: {sorted(allowed)}")
        return value

    def rgb(self, value: Any, key: str) -> tuple[int, int, int]:
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(key, f"must be [r, g, b], got {value!r}")
        red, green, blue = (self.integer(v, key, 0, 255) for v in value)
        return red, green, blue

    def font(self, name: Any, key: str) -> str:
        """A font file: relative to the style file's folder, else one of training/fonts/."""
        if not isinstance(name, str) or not name:
            raise self.fail(key, f"must be a font file name, got {name!r}")
        for candidate in (self.folder / name, FONT_DIR / name):
            if candidate.is_file():
                return str(candidate.resolve())
        raise self.fail(key, f"font file {name!r} is neither beside the style nor in {FONT_DIR}")

    def draw(self, value: Any, key: str, integer: bool) -> Draw:
        if not isinstance(value, dict):
            return self.integer(value, key, low=-(1 << 30)) if integer else self.number(value, key)
        if len(value) != 1:
            raise self.fail(
                key, 'give one of {"uniform": [lo, hi]}, {"integers": [lo, hi]}, {"choice": [...]}'
            )
        ((kind, args),) = value.items()
        if kind not in ("uniform", "integers", "choice") or not isinstance(args, list) or not args:
            raise self.fail(
                key, 'give one of {"uniform": [lo, hi]}, {"integers": [lo, hi]}, {"choice": [...]}'
            )
        numbers = tuple(self.number(a, f"{key}.{kind}") for a in args)
        if kind != "choice" and (len(numbers) != 2 or numbers[0] > numbers[1]):
            raise self.fail(key, f"{kind} needs [low, high] with low <= high, got {args}")
        if (kind == "integers" or integer) and not all(float(n).is_integer() for n in numbers):
            raise self.fail(key, f"must draw integers, got {args}")
        return (kind, numbers)

    def mode(self, value: Any, key: str) -> Mode:
        fields = {*DRAWN_FIELDS, "extra_chars", "extra_fonts"}
        raw = self.mapping(value, key, fields)
        if "font_size" not in raw:
            raise self.fail(key, "needs font_size")
        kwargs: dict[str, Any] = {
            name: self.draw(raw[name], f"{key}.{name}", name in INTEGER_FIELDS)
            for name in DRAWN_FIELDS
            if name in raw
        }
        extra_chars = raw.get("extra_chars", "")
        if not isinstance(extra_chars, str):
            raise self.fail(f"{key}.extra_chars", "must be a string")
        kwargs["extra_chars"] = extra_chars
        if "extra_fonts" in raw:
            extra = self.mapping(raw["extra_fonts"], f"{key}.extra_fonts", {"files", "probability"})
            files = extra.get("files")
            if not isinstance(files, list) or not files:
                raise self.fail(f"{key}.extra_fonts.files", "must be a non-empty list of font files")
            kwargs["extra_fonts"] = tuple(self.font(f, f"{key}.extra_fonts.files") for f in files)
            kwargs["extra_font_probability"] = float(
                self.number(extra.get("probability"), f"{key}.extra_fonts.probability", 0.0, 1.0)
            )
        return Mode(**kwargs)


#: The keys a style file may set; the first group defaults to the SDK's site values.
KEYS = frozenset(
    {"width", "height", "label_length", "charset", "model_charset"}
    | {"name", "about", "charset_weights", "margins", "background", "colour", "fonts", "families"}
    | {"filters", "modes"}
)
REQUIRED = ("margins", "background", "colour", "fonts", "families", "filters", "modes")


def _charset(r: _Reader, raw: dict[str, Any], key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise r.fail(key, "must be a non-empty string")
    if len(set(value)) != len(value):
        raise r.fail(key, f"has repeated characters: {value!r}")
    return value


def _char_weights(r: _Reader, raw: dict[str, Any], charset: str) -> tuple[float, ...] | None:
    if "charset_weights" not in raw:
        return None
    given = r.mapping(raw["charset_weights"], "charset_weights", set(charset))
    weights = tuple(float(r.number(given.get(ch, 1.0), f"charset_weights.{ch}", 0.0)) for ch in charset)
    if not sum(weights):
        raise r.fail("charset_weights", "every character has weight 0")
    return weights


def _colour_rule(r: _Reader, value: Any) -> dict[str, Any]:
    colour = r.mapping(value, "colour")
    rule = colour.get("rule")
    if rule not in COLOUR_RULES:
        raise r.fail("colour.rule", f"{rule!r} is not one of {sorted(COLOUR_RULES)}")
    r.mapping(colour, "colour", {"rule", *COLOUR_RULES[rule]})
    for name in COLOUR_RULES[rule]:
        if name not in colour:
            raise r.fail(f"colour.{name}", f"needed by rule {rule!r}")
    if rule == "one_dark_channel":
        r.integer(colour["dark_max"], "colour.dark_max", 0, 255)
    elif rule == "channels":
        if r.integer(colour["min"], "colour.min", 0, 255) > r.integer(colour["max"], "colour.max", 0, 255):
            raise r.fail("colour", "min is above max")
    else:
        colours = colour["colours"]
        if not isinstance(colours, list) or not colours:
            raise r.fail("colour.colours", "must be a non-empty list of [r, g, b]")
        for c in colours:
            r.rgb(c, "colour.colours")
    return colour


def _fonts(r: _Reader, value: Any) -> tuple[FontFamily, ...]:
    if not isinstance(value, list) or not value:
        raise r.fail("fonts", 'must be a non-empty list of {"files": [...], "weight": w}')
    fonts = []
    for i, entry in enumerate(value):
        e = r.mapping(entry, f"fonts[{i}]", {"files", "weight"})
        files = e.get("files")
        if not isinstance(files, list) or not files:
            raise r.fail(f"fonts[{i}].files", "must be a non-empty list of font files")
        weight = float(r.number(e.get("weight", 1.0), f"fonts[{i}].weight", 0.0))
        fonts.append(FontFamily(tuple(r.font(f, f"fonts[{i}].files") for f in files), weight))
    if not sum(f.weight for f in fonts):
        raise r.fail("fonts", "every font family has weight 0")
    return tuple(fonts)


def _filters(r: _Reader, value: Any) -> dict[str, Any]:
    filters = r.mapping(value, "filters", set(FILTER_PARAMETERS))
    for name, params in filters.items():
        r.mapping(params, f"filters.{name}", FILTER_PARAMETERS[name])
        missing = sorted(FILTER_PARAMETERS[name] - set(params))
        if missing:
            raise r.fail(f"filters.{name}", f"missing {missing}")
        for key, param in params.items():
            if not isinstance(param, list):
                r.number(param, f"filters.{name}.{key}")
                continue
            if len(param) != 2 or r.number(param[0], f"filters.{name}.{key}") > r.number(
                param[1], f"filters.{name}.{key}"
            ):
                raise r.fail(f"filters.{name}.{key}", f"must be [low, high], got {param}")
    curve = filters.get("curve")
    if curve is not None and not (isinstance(curve["points"], list) and curve["points"][0] >= 2):
        raise r.fail("filters.curve.points", "must be [low, high] with at least 2 points")
    return filters


def _families(r: _Reader, value: Any, filters: Mapping[str, Any]) -> tuple[Family, ...]:
    raw = r.mapping(value, "families")
    if not raw:
        raise r.fail("families", "needs at least one filter family")
    families = []
    for name, entry in raw.items():
        e = r.mapping(entry, f"families.{name}", {"steps", "weight"})
        steps = e.get("steps")
        if not isinstance(steps, list):
            raise r.fail(f"families.{name}.steps", "must be a list of filter names (may be empty)")
        for step in steps:
            if step not in filters:
                raise r.fail(f"families.{name}.steps", f"{step!r} has no parameters under filters")
        weight = e.get("weight")
        if weight is not None:
            weight = float(r.number(weight, f"families.{name}.weight", 0.0))
        families.append(Family(name, tuple(steps), weight))
    if len({f.weight is None for f in families}) > 1:
        raise r.fail("families", "give every family a weight, or none (equally likely)")
    if families[0].weight is not None and not sum(f.weight or 0.0 for f in families):
        raise r.fail("families", "every family has weight 0")
    return tuple(families)


def _build(raw: dict[str, Any], source: str, folder: Path) -> CaptchaStyle:
    r = _Reader(source, folder)
    r.mapping(raw, "the file", KEYS)
    for required in REQUIRED:
        if required not in raw:
            raise r.fail(required, 'missing (or start from the site\'s style with "extends": "site")')
    charset = _charset(r, raw, "charset", SITE_CHARS)
    model_charset = _charset(r, raw, "model_charset", CHARSET)
    if model_charset != model_charset.lower():
        raise r.fail("model_charset", "labels are case-insensitive: give the classes in lowercase")
    m = r.mapping(raw["margins"], "margins", {"left", "right", "top", "bottom"})
    margins = tuple(
        r.integer(m.get(side), f"margins.{side}", 0, 4096) for side in ("left", "right", "top", "bottom")
    )
    filters = _filters(r, raw["filters"])
    modes = r.mapping(raw["modes"], "modes", {"wide_probability", "faithful", "wide"})
    for name in ("faithful", "wide"):
        if name not in modes:
            raise r.fail(f"modes.{name}", "missing")
    faithful, wide = r.mode(modes["faithful"], "modes.faithful"), r.mode(modes["wide"], "modes.wide")
    outside = sorted(set((charset + faithful.extra_chars + wide.extra_chars).lower()) - set(model_charset))
    if outside:
        raise r.fail(
            "model_charset", f"lacks {''.join(outside)!r}, which the style draws (labels are lowercase)"
        )
    name = raw.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise r.fail("name", "must be a non-empty string")
    return CaptchaStyle(
        name=name,
        source=source,
        width=r.integer(raw.get("width", IMAGE_WIDTH), "width", 16, 4096),
        height=r.integer(raw.get("height", IMAGE_HEIGHT), "height", 8, 4096),
        label_length=r.integer(raw.get("label_length", LABEL_LENGTH), "label_length", 1, 64),
        charset=charset,
        model_charset=model_charset,
        char_weights=_char_weights(r, raw, charset),
        margins=margins,  # type: ignore[arg-type]
        background=r.rgb(raw["background"], "background"),
        colour=_colour_rule(r, raw["colour"]),
        fonts=_fonts(r, raw["fonts"]),
        families=_families(r, raw["families"], filters),
        filters=filters,
        wide_probability=float(
            r.number(modes.get("wide_probability", 0.0), "modes.wide_probability", 0.0, 1.0)
        ),
        faithful=faithful,
        wide=wide,
        about=str(raw.get("about", "")),
    )


def load_style(path: str | Path | None = None) -> CaptchaStyle:
    """The style in ``path`` (a file, or a name in training/styles/); ``None`` is the site's."""
    if path is None:
        return site_style()
    path = Path(path)
    if not path.suffix and not path.exists():
        path = STYLE_DIR / f"{path}.json"
    return _build(_raw(path), str(path), path.resolve().parent)


@lru_cache(maxsize=1)
def site_style() -> CaptchaStyle:
    """The site's style (``training/styles/site.json``), read once."""
    return _build(_raw(SITE_STYLE), str(SITE_STYLE), STYLE_DIR)
