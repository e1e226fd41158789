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
        "About 2 ms of client CPU per REST call against 0.9 ms over gRPC: urllib3's Python per request, "
        "`json.loads` of the 40 x 37 softmax and the exact preprocessing of the picture take most of it"
    ),
    "4b": "The exact preprocessing and the gRPC stack's Python per call are most of the client's CPU",
    "5a": (
        "The server's own time is most of both calls (about 5.5 ms of ours against 4.3 ms of the "
        "baseline's per request, see Time inside the server): our default request, a 1-bit PNG to "
        "`serving_bytes`, costs the model about 0.5 ms more than the float tensor (the in-graph decode) and "
        "the local Python server adds 1-1.5 ms around each model call. The 1.5-2 ms the client saves "
        "(row 4b) cannot make up 0.75x of that; a server with less per-request overhead, such as TF Serving "
        "(`--server-grpc`/`--server-rest`), would leave the client's part a larger share"
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
        "About 0.7 ms per image against ddddocr's 3.4-5.5 ms puts the ratio near 0.2: the int8 model takes "
        "about 0.25 ms, PNG decoding 0.12-0.17 ms, the exact gray and threshold 0.07 ms, the client and the "
        "decoders about 0.2 ms. A smaller model or a compiled preprocessing would give margin"
    ),
    "8b": (
        "As 8a without most per-call costs: about 0.55 ms per image, half of it PNG decoding and the exact "
        "preprocessing"
    ),
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
        "Python's start and importing numpy, Pillow and LiteRT take about 0.15 s before the model loads, "
        "while ddddocr's whole run (onnxruntime loads quickly) is 0.3-0.55 s on this machine; a third of "
        "it is about what the interpreter and numpy alone need"
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
