"""Captcha generator, model presets, data pipeline and the training command (needs TensorFlow)."""
