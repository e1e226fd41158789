"""A TensorFlow Serving-compatible model server, for development and tests only.

Production is TensorFlow Serving (``tensorflow/serving`` Docker image or
``tensorflow_model_server``); this package exists so that the SDK, examples and CI can
talk to the real wire protocol (REST on aiohttp, gRPC on tensorflow-serving-api's
official servicers) without Docker. It takes ``tensorflow_model_server``'s flags
(``python -m shixin_client.server --help``), serves versioned SavedModels with
``tf.saved_model.load`` and mirrors the behaviours catalogued in
``docs/tf-serving-compat.md``: URLs, JSON formats, error texts and status codes.

Entry points: :func:`shixin_client.server.cli.main` (the command line),
:class:`shixin_client.server.server.ModelServer` (in-process) and
:func:`shixin_client.server.testing.running_server` (tests). Importing this package alone
loads nothing heavy; TensorFlow is imported when a server is built. The SDK never
imports this package (``shixin serve`` does, lazily).
"""
