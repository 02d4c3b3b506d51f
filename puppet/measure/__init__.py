"""How good and how fast: image metrics, ``puppet eval`` (held-out and driven scores, contact sheet)
and ``puppet bench`` (loss, training and rendering speed)."""
