"""Evaluation: metrics, evaluating runs, predicting new images."""
