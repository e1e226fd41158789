"""Style files: the site's reproduces the generator's images, new styles need only a file."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import PIL
import pytest
from PIL import Image

from shixin_client._spec import CHARSET, DEFAULT_SPEC, IMAGE_HEIGHT, IMAGE_WIDTH, LABEL_LENGTH, SITE_CHARS
from training import generate as generate_cli
from training import sheet
from training.dataset import render
from training.generator import captcha_at, generate, render_captcha
from training.style import SITE_STYLE, STYLE_DIR, StyleError, load_style, site_style

#: Digests of captchas the generator drew before it read its style from a file (seed 99,
#: images 0-199, the mixed stream; and "3a3B" in every family and mode from one rng seed).
SITE_STREAM_DIGEST = "9d592dc97a324be5aad5b3897c7650dea041b3707ec33ffe8d6a464b60f4e3cd"
SITE_FAMILIES_DIGEST = "1f16671d6b338c7c68446aac3b22cad59f73f0aea8f11c70aa491b2b5efdd413"
RECORDED_WITH = "Pillow 13.0.0 and OpenCV 5.0.0"


def write_style(folder: Path, name: str, **keys: object) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"extends": "site", "name": name, **keys}))
    return path


def test_the_site_style_draws_the_images_the_coded_generator_drew() -> None:
    stream = hashlib.sha256()
    for captcha in generate(seed=99, count=200):
        stream.update(captcha.image.tobytes())
        stream.update(captcha.text.encode())
        stream.update(captcha.family.encode())
        stream.update(bytes([captcha.wide]))
    families = hashlib.sha256()
    for family in ("curves", "diffuse", "marble", "wobble", "double_ripple"):
        for wide in (False, True):
            captcha = render_captcha(np.random.default_rng([7, 1]), text="3a3B", family=family, wide=wide)
            families.update(captcha.image.tobytes())
    versions = f"recorded with {RECORDED_WITH}; now Pillow {PIL.__version__}, OpenCV {cv2.__version__}"
    assert stream.hexdigest() == SITE_STREAM_DIGEST, versions
    assert families.hexdigest() == SITE_FAMILIES_DIGEST, versions


def test_the_site_style_takes_its_size_and_characters_from_the_sdk() -> None:
    raw = json.loads(SITE_STYLE.read_text())
    # The SDK's _spec is their one source: the file must not restate (and so drift from) them.
    assert not {"width", "height", "label_length", "charset", "model_charset"} & set(raw)
    style = site_style()
    assert (style.width, style.height, style.label_length) == (IMAGE_WIDTH, IMAGE_HEIGHT, LABEL_LENGTH)
    assert (style.charset, style.model_charset) == (SITE_CHARS, CHARSET)
    assert style.spec == DEFAULT_SPEC
    assert load_style("site") == load_style(SITE_STYLE) == load_style(None) == style


def test_a_new_style_is_a_file_that_changes_size_length_characters_and_filters(tmp_path: Path) -> None:
    path = write_style(
        tmp_path, "five", width=120, height=48, label_length=5, charset="ABCDEF0123",
        model_charset="abcdef0123", background=[200, 230, 255],
        colour={"rule": "palette", "colours": [[120, 0, 0], [0, 0, 120]]},
        families={"plain": {"steps": []}, "wavy": {"steps": ["ripple"], "weight": 1}},
        modes={"faithful": {"font_size": 26}, "wide": {"font_size": 24, "extra_chars": ""}},
    )  # fmt: skip
    with pytest.raises(StyleError, match="every family a weight, or none"):
        load_style(path)
    raw = json.loads(path.read_text())
    raw["families"]["plain"]["weight"] = 3
    path.write_text(json.dumps(raw))
    style = load_style(path)
    assert style.spec.charset == "abcdef0123" and style.spec.label_length == 5
    assert (style.spec.width, style.spec.height, style.spec.time_steps) == (120, 48, 30)
    captchas = list(generate(seed=1, count=40, style=style))
    assert all(c.image.size == (120, 48) and len(c.label) == 5 for c in captchas)
    assert set("".join(c.text for c in captchas)) <= set("ABCDEF0123")
    assert 20 < sum(c.family == "plain" for c in captchas) < 40  # weight 3 to 1
    corner = np.asarray(captchas[0].image)[0, 0, :3]
    assert tuple(corner) == (200, 230, 255)
    batch = render(1, 0, 4, style=style)
    assert batch.images.shape == (4, 48, 120, 1) and batch.labels.shape == (4, 5)
    assert batch.texts == [c.label for c in captchas[:4]]


def test_character_weights_change_the_odds(tmp_path: Path) -> None:
    style = load_style(write_style(tmp_path, "weighted", charset_weights={"A": 50, "b": 0}))
    text = "".join(captcha_at(3, i, wide=False, style=style).text for i in range(50))
    assert text.count("A") > 60 and "b" not in text


def test_the_documented_example_style_loads(tmp_path: Path) -> None:
    readme = (STYLE_DIR / "README.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", readme, re.S).group(1))  # type: ignore[union-attr]
    path = tmp_path / "example.json"
    path.write_text(json.dumps(example))
    style = load_style(path)
    assert style.label_length == 5 and style.family_names == ("ripple", "wobble")
    assert style.filters["ripple"]["amplitude"] == 7.0 and style.filters["ripple"]["x_period"] == 20
    assert render_captcha(np.random.default_rng(0), style=style).image.size == (160, 70)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"colour": {"rule": "rainbow"}}, r"colour.rule: 'rainbow' is not one of"),
        ({"fonts": [{"files": ["Comic.ttf"]}]}, r"fonts\[0\].files: font file 'Comic.ttf' is neither"),
        ({"charset": "ABC!"}, r"model_charset: lacks '!'"),
        ({"filters": {"ripple": {"amplitud": 3}}}, r"filters.ripple: unknown keys \['amplitud'\]"),
        ({"families": {"x": {"steps": ["blur"]}}}, r"families.x.steps: 'blur' has no parameters"),
        ({"modes": {"wide": {"jitter": {"gauss": [0, 1]}}}}, r"modes.wide.jitter: give one of"),
        ({"label_length": 0}, r"label_length: 0 is outside 1..64"),
        ({"colours": "red"}, r"the file: unknown keys \['colours'\]"),
    ],
)
def test_a_bad_style_names_the_file_and_the_key(
    tmp_path: Path, keys: dict[str, object], message: str
) -> None:
    path = write_style(tmp_path, "bad", **keys)
    with pytest.raises(StyleError, match=rf"style .*bad\.json: {message}"):
        load_style(path)


def test_unreadable_style_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(StyleError, match="no such file"):
        load_style(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(StyleError, match="not valid JSON"):
        load_style(broken)
    (tmp_path / "bare.json").write_text("{}")
    with pytest.raises(StyleError, match=r"bare\.json: margins: missing"):
        load_style(tmp_path / "bare.json")


def test_generate_cli_renders_a_style_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_style(tmp_path, "wide5", width=200, label_length=5)
    out = tmp_path / "out"
    assert generate_cli.main(["--out", str(out), "--count", "3", "--style", str(path)]) == 0
    files = sorted(out.iterdir())
    assert len(files) == 3
    for file in files:
        assert re.fullmatch(r"[0-9a-z]{5}_[0-9a-f]{32}\.png", file.name)
        assert Image.open(file).size == (200, 70)
    assert "style 'wide5'" in capsys.readouterr().out
    assert generate_cli.main(["--out", str(out), "--count", "1", "--style", str(tmp_path / "no.json")]) == 2
    assert "no.json: no such file" in capsys.readouterr().err


def test_sheet_shows_a_style_beside_real_captchas_at_its_size(tmp_path: Path) -> None:
    path = write_style(tmp_path, "small", width=100, height=40, modes={"faithful": {"font_size": 24}})
    real = tmp_path / "real"
    real.mkdir()
    for i in range(12):  # more than half a sheet: only half the tiles are real
        Image.new("RGB", (160, 70), (i * 20, 0, 0)).save(real / f"ab{i:02d}_{i}.png")
    (real / "notes.txt").write_text("not a captcha")
    out = tmp_path / "sheet.png"
    assert sheet.main(["--out", str(out), "--real", str(real), "--style", str(path), "--seed", "1"]) == 0
    key = out.with_suffix(".md").read_text()
    assert key.count(": real ") == sheet.COLUMNS * sheet.ROWS // 2
    assert "--style" in key
    assert Image.open(out).size == (
        sheet.COLUMNS * (100 + sheet.PAD) + sheet.PAD,
        sheet.ROWS * (40 + sheet.PAD) + sheet.PAD,
    )
