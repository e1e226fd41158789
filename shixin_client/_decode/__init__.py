"""CTC decoding: the model's softmax [N, T, C] to class paths, and paths to Predictions.

The server returns the raw softmax; decoding runs here so that clients need neither
TensorFlow nor a decoder in the graph, and so that training measures accuracy with the
code users run. One module per purpose:

- :mod:`.softmax`: what a softmax must look like, checked in one place;
- :mod:`.greedy`: the best class per frame (numpy, and plain Python for the numpy-free
  :class:`~shixin_client._tensor.Tensor`), the same paths as ``keras.ops.ctc_decode``;
- :mod:`.beam`: prefix beam search, the top path of ``tf.nn.ctc_beam_search_decoder``;
- :mod:`.length`: a path of the wrong length refitted to the captcha's label length;
- :mod:`.alphabet`: limiting what may be read to some characters;
- :mod:`.predictions`: :func:`~.predictions.decode_softmax`, all of the above to Predictions.

Every decoder takes the blank index as an argument (Keras and TensorFlow assume the
last class).
"""
