"""Trained Keras model -> what gets served: a versioned SavedModel for TF Serving, and LiteRT.

- :func:`export.saved_model.export_model` writes ``<base>/<name>/<version>/`` atomically,
  with the ``serving_default``, ``serving_bytes`` and ``describe`` signatures and TF
  Serving warm-up requests;
- :func:`export.tflite.write_tflite` writes the SDK's embedded LiteRT model;
- :func:`export.check.run_check` (``python -m export check``) proves an export answers
  like the Keras model.

The command line is ``python -m export`` (:mod:`export.cli`). Submodules import
TensorFlow; this package file does not, so ``python -m export --help`` stays fast.
"""
