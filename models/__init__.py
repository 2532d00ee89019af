"""Models: where each comes from and how it is found, loaded or downloaded (``catalog``), and
how KenLM models are trained (``lm_training``). No Beam."""
