"""Training on labelled captchas: which files are used, the split, the epochs, and a training run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from shixin_client import preprocess
from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec
from training import train
from training.dataset import mixed_epochs, render
from training.generator import captcha_at, generate, png_bytes
from training.labelled import load_labelled, read, reading_report, split
from training.style import load_style


def write_captchas(folder: Path, count: int, seed: int = 4, style=None) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` generated captchas in the reference naming, as PNG, JPEG and BMP files in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for i, captcha in enumerate(generate(seed, count, style=style)):
        fmt = ("PNG", "JPEG", "BMP")[i % 3]
        data = io.BytesIO()
        captcha.image.convert("RGB" if fmt == "JPEG" else "RGBA").save(data, format=fmt)
        (folder / f"{captcha.text}_{i}.{fmt.lower()}").write_bytes(data.getvalue())
        labels.append(captcha.label)
    return labels


def test_usable_files_are_read_in_any_format_and_each_other_file_gets_one_line(tmp_path: Path) -> None:
    labels = write_captchas(tmp_path / "a", 4)
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "deep" / f"3A3B_{'9' * 32}.png").write_bytes(png_bytes(captcha_at(1, 0)))
    bad = tmp_path / "b"
    (bad / "nolabel.png").write_bytes(png_bytes(captcha_at(1, 1)))
    (bad / "abcde_1.png").write_bytes(png_bytes(captcha_at(1, 2)))
    (bad / "ab?c_1.png").write_bytes(png_bytes(captcha_at(1, 3)))
    (bad / "abcd_truncated.png").write_bytes(png_bytes(captcha_at(1, 4))[:100])
    (bad / "abcd_text.png").write_bytes(b"not a picture at all")
    (bad / "families.csv").write_text("file,family\n")
    lines: list[str] = []
    found = load_labelled([tmp_path / "a", bad], DEFAULT_SPEC, say=lines.append)
    assert len(found) == 5
    assert sorted(found.texts) == sorted([*labels, "3a3b"])
    assert found.images.shape == (5, 70, 160, 1) and found.images.dtype == np.uint8
    first = found.files.index(next(p for p in found.files if p.suffix == ".png"))
    np.testing.assert_array_equal(found.images[first], preprocess(found.files[first]).astype(np.uint8))
    skipped = [line for line in lines if line.startswith("skipped ")]
    assert len(skipped) == 6
    why = {
        Path(line.split(": ", 1)[0].removeprefix("skipped ")).name: line.split(": ", 1)[1] for line in skipped
    }
    assert "carries no label" in why["nolabel.png"]
    assert "has 5 characters; the model reads 4" in why["abcde_1.png"]
    assert "not letters and digits" in why["ab?c_1.png"]
    assert "truncated or corrupt" in why["abcd_truncated.png"]
    assert "not a recognised image" in why["abcd_text.png"]
    assert "not an image file name" in why["families.csv"]
    assert lines[-1] == "labelled captchas: 5 of 11 files used"
    with pytest.raises(NotADirectoryError, match="missing"):
        load_labelled([tmp_path / "missing"], DEFAULT_SPEC, say=lines.append)


def test_a_label_outside_the_models_classes_is_skipped(tmp_path: Path) -> None:
    spec = CaptchaSpec(charset="abc", label_length=4, height=70, width=160, time_steps=40)
    (tmp_path / "abcz_1.png").write_bytes(png_bytes(captcha_at(1, 0)))
    lines: list[str] = []
    assert len(load_labelled([tmp_path], spec, say=lines.append)) == 0
    assert "no class for: 'z'" in lines[0]


def test_split_is_drawn_from_the_seed_and_keeps_both_parts(tmp_path: Path) -> None:
    write_captchas(tmp_path, 10)
    found = load_labelled([tmp_path], DEFAULT_SPEC, say=lambda _: None)
    kept, held = split(found, 0.2, seed=3)
    assert (len(kept), len(held)) == (8, 2)
    assert set(kept.files) | set(held.files) == set(found.files)
    assert split(found, 0.2, seed=3)[1].files == held.files
    assert split(found, 0.2, seed=4)[1].files != held.files
    assert len(split(found, 0.01, seed=3)[1]) == 1 and len(split(found, 0.0, seed=3)[1]) == 0
    with pytest.raises(ValueError, match="holdout 1.0"):
        split(found, 1.0, seed=3)


def test_epochs_mix_labelled_and_generated_captchas_and_augment_labelled_ones_afresh(tmp_path: Path) -> None:
    write_captchas(tmp_path, 12)
    found = load_labelled([tmp_path], DEFAULT_SPEC, say=lambda _: None)
    again = found.epoch_images(5, 1, DEFAULT_SPEC, augment=True)
    np.testing.assert_array_equal(again, found.epoch_images(5, 1, DEFAULT_SPEC, augment=True))
    assert not np.array_equal(again, found.epoch_images(5, 2, DEFAULT_SPEC, augment=True))
    assert found.epoch_images(5, 1, DEFAULT_SPEC, augment=False) is found.images
    generated = render(8, 0, 6)
    epochs = mixed_epochs(found, lambda epoch: generated, 5, seed=2, spec=DEFAULT_SPEC)
    labels = np.concatenate([y.numpy() for _, y in epochs(0)])
    assert len(labels) == 18
    decoded = sorted("".join(DEFAULT_SPEC.charset[c] for c in row) for row in labels)
    assert decoded == sorted([*found.texts, *generated.texts])


def test_reading_report_counts_exact_characters_and_names_the_misreads() -> None:
    report = reading_report(["a.png", "b.png"], ["abcd", "wxyz"], ["ABCD", "wxyy"])
    assert report["exact_match"] == 0.5 and report["char_accuracy"] == 7 / 8
    assert report["misreads"] == [{"file": "b.png", "label": "wxyz", "read": "wxyy"}]


def test_training_on_a_labelled_folder_of_a_new_style_mixed_with_generated_ones(tmp_path: Path) -> None:
    style_path = tmp_path / "five.json"
    style_path.write_text(
        json.dumps({"extends": "site", "label_length": 5, "width": 120, "height": 48, "charset": "ABCD2345",
                    "modes": {"faithful": {"font_size": 28}, "wide": {"font_size": 26, "extra_chars": ""}}})
    )  # fmt: skip
    style = load_style(style_path)
    write_captchas(tmp_path / "labelled", 24, style=style)
    (tmp_path / "labelled" / "junk.png").write_bytes(b"junk")
    out = tmp_path / "run"
    args = ["--out", str(out), "--style", str(style_path), "--labelled", str(tmp_path / "labelled"),
            "--generated-ratio", "0.5", "--holdout", "0.25", "--augment", "--epochs", "1",
            "--batch-size", "8", "--test-size", "8", "--workers", "1"]  # fmt: skip
    assert train.main(args) == 0
    log = (out / "train.log").read_text()
    assert "skipped " in log and "junk.png" in log
    assert "labelled captchas: 24 of 25 files used" in log
    assert "each epoch: 18 labelled and 9 generated captchas" in log
    assert "validation: the 6 held-out labelled captchas" in log
    held = json.loads((out / "holdout.json").read_text())
    assert held["count"] == 6 and len(held["misreads"]) <= 6
    report = json.loads((out / "report.json").read_text())
    assert report["count"] == 8  # generated captchas of the style, not the site's evaluation
    model = keras.models.load_model(out / "best.keras")
    assert model.input_shape == (None, 48, 120, 1) and model.output_shape[-1] == len(style.model_charset) + 1
    assert len(read(model, np.zeros((2, 48, 120, 1), np.uint8), style.spec)) == 2


def test_bad_arguments_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--out", str(tmp_path / "x"), "--style", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    assert train.main(["--out", str(tmp_path / "x"), "--labelled", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
