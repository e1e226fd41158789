"""What holds back each row that can miss its target, in one or two sentences.

Printed under the table of docs/benchmarks.md for the rows that missed in that run, so a
reader sees the cause beside the figure. Written from profiles of these rows on the 2-core
benchmark machine; a test checks that every row missed in benchmarks/results.json has one.
"""

from __future__ import annotations

_FAMILY = (
    "Its misreads are listed under row 12a in benchmarks/results.json (`misreads`); the model has not "
    "learnt this filter family's distortions as well as the others', and closing it is training work "
    "(more captchas like these in the training data), not a client change"
)

LIMITS: dict[str, str] = {
    "4a": (
        "The REST client spends about 1.6x the gRPC client's CPU per call (row 4b): urllib3's Python per "
        "request, reading the 40 x 37 softmax out of JSON and the exact preprocessing of the picture take "
        "most of it, which puts the ratio near 1/10"
    ),
    "4b": "The exact preprocessing and the gRPC stack's Python per call are most of the client's CPU",
    "5a": (
        "The server's own time is most of both calls (about 70% of ours against 50% of the baseline's, see "
        "Time inside the server): our default request, a 1-bit PNG to `serving_bytes`, costs the model more "
        "than the float tensor (the in-graph decode) and the local Python server adds its own time around "
        "each model call. The client CPU ours saves (row 4b) cannot make up 0.75x of that; a server with "
        "less per-request overhead, such as TF Serving (`--server-grpc`/`--server-rest`), would leave the "
        "client's part a larger share"
    ),
    "5b": (
        "As 5a: about 70% of our call is spent inside the server, so the ratio rests on how much longer "
        "the server takes to parse the baseline's 110 KB of float JSON than our 0.6 KB request"
    ),
    "6a": (
        "With eight callers on two shared cores the server's work per request bounds both sides, and our "
        "PNG request costs it more than the float tensor (the in-graph decode), which cancels the client "
        "CPU ours saves; 1.3x needs a server whose per-request costs are lower than the local Python one's "
        "on the same cores"
    ),
    "6b": "As 6a, with the REST client's extra CPU per request (row 4a) on the same two cores",
    "7a": (
        "numpy's argmax over the 37-wide class axis is most of our decoder's time (one C call per frame); "
        "both decoders cost a few microseconds per captcha, under 1% of a recognition"
    ),
    "8a": (
        "The LiteRT model call is most of each image: on this run's CPU (AMD EPYC, AVX2, no AVX-512) the "
        "int8 and the float model each take about 1.5-1.8 ms per call, so the int8 companion saves nothing "
        "and the float model's rereads of unsure readings add to it; PNG decoding, the exact preprocessing "
        "and the decoders take about 0.6 ms. A CPU with fast int8 kernels or a smaller model gives margin"
    ),
    "8b": ("As 8a without most per-call costs: the model call is still most of each image"),
    "9b": (
        "After the same 100,000 images (2 epochs) the bigger seed network has learnt a little more per "
        "image; given more of the same data the default leads (rows 9d and 9e) with an eighth of the "
        "parameters"
    ),
    "9c": (
        "Both runs are far from converged (19-23 minutes of one CPU thread each); a converged comparison "
        "needs both trained to convergence"
    ),
    "11a": (
        "Python with numpy already holds about 26 MB and Pillow plus the LiteRT runtime bring it to 37 MB "
        "before any model; the two interpreters (int8 and float, with XNNPACK) and their buffers make the "
        "rest. A third of ddddocr's peak is about 34 MB, less than the runtime alone"
    ),
    "11b": (
        "Python's start and importing numpy, Pillow and LiteRT take most of our run before the model "
        "loads, while ddddocr's whole run (onnxruntime loads quickly) is only a little longer; a third of "
        "it is less than the interpreter and numpy alone need"
    ),
    "12a": (
        "The misreads are all in the curves family (row 12b), where a thick multi-coloured curve through "
        "the text hides parts of the glyphs; 99.9% needs the model to read that family better, which is "
        "training work (more such captchas in its data), not a client change"
    ),
    "12b": (
        "A thick multi-coloured curve drawn through the text, then ripple, hides parts of the glyphs (an "
        "`R` read as `P`, a `w` as `f`); the model has not learnt to see through it as well as the other "
        "families' distortions, and closing it is training work"
    ),
    "12c": _FAMILY,
    "12d": _FAMILY,
    "12e": _FAMILY,
    "12f": _FAMILY,
    "13a": (
        "Some misreads of curves captchas are confident (0.94 and 0.96, above the default), so they "
        "are accepted, while correct readings of the same family often fall under it; a model that is "
        "unsure where it is wrong (better trained on that family) is what lowers both"
    ),
    "13b": (
        "Most rejected readings are right (see the row's note): the confidence of correct readings of the "
        "hardest captchas overlaps that of misreads, so a threshold high enough to catch the misreads also "
        "rejects good readings"
    ),
    "13c": (
        "A few misreads of the faithful generated captchas are confident enough to pass the default "
        "threshold; lowering them needs a better-calibrated or more accurate model"
    ),
    "13d": "As 13b: correct and wrong readings overlap in confidence under the default threshold",
}
