"""Curve analysis: pure functions over curves and trial records (fit diagnosis, judged trials,
fit summary, leaderboard, rerun curve comparison). No MLflow, no Keras, no I/O."""
