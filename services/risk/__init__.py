"""Risk: the fraud/velocity check on placed orders (faust-streaming)."""
